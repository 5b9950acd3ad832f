# varve-storage.pc: the storage core for builds without CMake
# (`pkg-config --cflags --libs varve-storage`).
#
# The static library (the default) needs LMDB, Botan, ISA-L and threads at
# every link, so they are in Requires and Libs, which a plain
# `pkg-config --libs` prints; the shared library links them itself and
# lists them as private. The prefix is found relative to the .pc file's own
# place (${pcfiledir}), so that an installed tree may be moved, e.g. the
# Debian package unpacked anywhere.
set(_varve_pc_modules "lmdb, botan-2, libisal")
if(VARVE_STATIC)
  set(VARVE_PC_REQUIRES ${_varve_pc_modules})
  set(VARVE_PC_REQUIRES_PRIVATE "")
  set(VARVE_PC_LIBS -pthread)
  set(VARVE_PC_LIBS_PRIVATE "")
else()
  set(VARVE_PC_REQUIRES "")
  set(VARVE_PC_REQUIRES_PRIVATE ${_varve_pc_modules})
  set(VARVE_PC_LIBS "")
  set(VARVE_PC_LIBS_PRIVATE -pthread)
endif()

set(_varve_pc_dir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(IS_ABSOLUTE ${CMAKE_INSTALL_LIBDIR})
  set(VARVE_PC_PREFIX ${CMAKE_INSTALL_PREFIX})
else()
  file(RELATIVE_PATH _varve_pc_up /prefix/${_varve_pc_dir} /prefix)
  string(REGEX REPLACE "/$" "" _varve_pc_up ${_varve_pc_up})
  set(VARVE_PC_PREFIX "\${pcfiledir}/${_varve_pc_up}")
endif()
foreach(_varve_dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE ${CMAKE_INSTALL_${_varve_dir}})
    set(VARVE_PC_${_varve_dir} ${CMAKE_INSTALL_${_varve_dir}})
  else()
    set(VARVE_PC_${_varve_dir} "\${prefix}/${CMAKE_INSTALL_${_varve_dir}}")
  endif()
endforeach()
configure_file(${CMAKE_CURRENT_LIST_DIR}/varve-storage.pc.in
  ${PROJECT_BINARY_DIR}/varve-storage.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/varve-storage.pc DESTINATION ${_varve_pc_dir})
