# Varve as a package (VARVE_INSTALL): what `cmake --install` puts under the
# prefix, the CMake package that find_package(Varve) loads from there or from
# the build tree, the pkg-config file of the storage core, and the Debian
# package varve-dev (`cpack -G DEB`).
#
# Under the prefix:
#   include/varve/<part>/...            the public headers
#   <libdir>/libvarve_*.a               the libraries (.so with BUILD_SHARED_LIBS)
#   <libdir>/cmake/Varve/               VarveConfig.cmake, VarveConfigVersion.cmake,
#                                       FindCAF.cmake and the exported targets
#   <libdir>/pkgconfig/varve-storage.pc
#
# Two export sets, so that a project using only the storage core needs no CAF
# (see VarveConfig.cmake.in for the components):
#   storage: Varve::storage, Varve::projection_protocol, Varve::projection_engine
#   actors:  Varve::actors, Varve::projections, Varve::settings, Varve::config,
#            Varve::runtime, Varve::remote, Varve::testkit
# A library that an exported target links must be exported as well: CMake
# refuses to generate otherwise.
include(CMakePackageConfigHelpers)

set(VARVE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Varve)
set(_varve_storage_targets varve_storage varve_projection_protocol varve_projection_engine)
set(_varve_actors_targets varve_actors varve_projections varve_settings varve_config varve_runtime
  varve_remote varve_testkit)

# Installs `targets` as the export set `set`, exported from the build tree too.
function(varve_install_export set)
  install(TARGETS ${ARGN} EXPORT ${set}
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT ${set} NAMESPACE Varve:: DESTINATION ${VARVE_CMAKE_DIR})
  export(EXPORT ${set} NAMESPACE Varve:: FILE ${PROJECT_BINARY_DIR}/${set}.cmake)
endfunction()

varve_install_export(VarveStorageTargets ${_varve_storage_targets})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/storage/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

if(VARVE_BUILD_ACTORS)
  varve_install_export(VarveActorsTargets ${_varve_actors_targets})
  install(DIRECTORY
    ${PROJECT_SOURCE_DIR}/actors/include/
    ${PROJECT_SOURCE_DIR}/projections/include/
    ${PROJECT_SOURCE_DIR}/config/include/
    ${PROJECT_SOURCE_DIR}/remote/include/
    ${PROJECT_SOURCE_DIR}/tests/testkit/include/
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
else()
  # The CAF-free headers of projections/ only (those of the protocol and the
  # engine).
  install(FILES
    ${PROJECT_SOURCE_DIR}/projections/include/varve/projections/engine.hpp
    ${PROJECT_SOURCE_DIR}/projections/include/varve/projections/protocol.hpp
    ${PROJECT_SOURCE_DIR}/projections/include/varve/projections/spec.hpp
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/varve/projections)
endif()

# The package configuration, in the build tree (find_package(Varve) with
# Varve_DIR=<build>) and installed; both find CAF with the FindCAF.cmake next
# to them.
get_target_property(_varve_storage_type varve_storage TYPE)
if(_varve_storage_type STREQUAL "STATIC_LIBRARY")
  set(VARVE_STATIC ON)
else()
  set(VARVE_STATIC OFF)
endif()
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/VarveConfig.cmake.in
  ${PROJECT_BINARY_DIR}/VarveConfig.cmake INSTALL_DESTINATION ${VARVE_CMAKE_DIR}
  NO_SET_AND_CHECK_MACRO)
# Before 1.0 a minor release may break the API: 0.1.x satisfies a request for
# 0.1 only. From 1.0 on, any later release of the same major version does.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(_varve_compatibility SameMinorVersion)
else()
  set(_varve_compatibility SameMajorVersion)
endif()
write_basic_package_version_file(${PROJECT_BINARY_DIR}/VarveConfigVersion.cmake
  COMPATIBILITY ${_varve_compatibility})
configure_file(${CMAKE_CURRENT_LIST_DIR}/FindCAF.cmake ${PROJECT_BINARY_DIR}/FindCAF.cmake COPYONLY)
install(FILES
  ${PROJECT_BINARY_DIR}/VarveConfig.cmake
  ${PROJECT_BINARY_DIR}/VarveConfigVersion.cmake
  ${CMAKE_CURRENT_LIST_DIR}/FindCAF.cmake
  DESTINATION ${VARVE_CMAKE_DIR})

include(VarvePkgConfig)

# The Debian package, from the top-level project only (CPack writes its
# configuration at the top of the build tree).
if(PROJECT_IS_TOP_LEVEL)
  include(VarveDebian)
endif()
