# The Debian package varve-dev: everything `cmake --install` installs
# (headers, libraries, CMake package, pkg-config file), under /usr.
#
#   cmake --build build && (cd build && cpack -G DEB)   # build/varve-dev_0.1.0_<arch>.deb
#
# It depends on the Debian -dev packages that a user's build needs: those of
# the libraries the static libraries link, CAF's headers and libraries for
# the CAF targets, nlohmann-json for the JSON codec of events, and
# pkg-config, through which the CMake package finds LMDB, Botan and ISA-L.
set(VARVE_PACKAGE_CONTACT "Varve maintainers <maintainers@varve.invalid>" CACHE STRING
  "The Maintainer of the Debian package")

set(CPACK_PACKAGE_NAME varve-dev)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR Varve)
set(CPACK_PACKAGE_CONTACT ${VARVE_PACKAGE_CONTACT})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "Varve: embedded event store and actor-model event sourcing for C++20 (development files)")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
  "Varve keeps events in LMDB and runs aggregates and projections as CAF actors. "
  "This package holds its headers, static libraries, CMake package "
  "(find_package(Varve)) and pkg-config file (varve-storage).")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(_varve_deb_depends "liblmdb-dev" "libbotan-2-dev" "libisal-dev" "pkgconf | pkg-config")
if(VARVE_BUILD_ACTORS)
  list(APPEND _varve_deb_depends "libcaf-dev (>= 0.17.6)" "libcaf-dev (<< 0.18)"
    "nlohmann-json3-dev (>= 3.10)" "libsimdjson-dev (>= 3)")
endif()
list(JOIN _varve_deb_depends ", " CPACK_DEBIAN_PACKAGE_DEPENDS)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS cmake)
# The libraries go without their debug information (VarveDebianStrip.cmake).
set(CPACK_VARVE_STRIP "${CMAKE_STRIP}")
if(CMAKE_CXX_COMPILER_RANLIB)
  set(CPACK_VARVE_RANLIB "${CMAKE_CXX_COMPILER_RANLIB}")
else()
  set(CPACK_VARVE_RANLIB "${CMAKE_RANLIB}")
endif()
list(APPEND CPACK_PRE_BUILD_SCRIPTS ${CMAKE_CURRENT_LIST_DIR}/VarveDebianStrip.cmake)
# `cpack --config CPackSourceConfig.cmake` (package_source): what git tracks.
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "/var/" "/bench/results/")
include(CPack)
