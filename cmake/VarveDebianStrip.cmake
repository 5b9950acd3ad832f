# Run by cpack (CPACK_PRE_BUILD_SCRIPTS) on the files staged for the varve-dev
# .deb: takes the debug information out of its libraries, as Debian's -dev
# packages ship them (a RelWithDebInfo build's static libraries are ~90 MB,
# mostly DWARF). The symbol tables stay: the libraries link as before. Other
# generators (TGZ, the source package) are left alone.
if(NOT CPACK_GENERATOR STREQUAL "DEB")
  return()
endif()
if(NOT CPACK_VARVE_STRIP)
  message(WARNING "varve-dev: no strip program; the libraries keep their debug information")
  return()
endif()
file(GLOB_RECURSE _staged "${CPACK_TEMPORARY_DIRECTORY}/*.a" "${CPACK_TEMPORARY_DIRECTORY}/*.so"
     "${CPACK_TEMPORARY_DIRECTORY}/*.so.*")
set(_stripped 0)
foreach(lib IN LISTS _staged)
  if(IS_SYMLINK "${lib}")
    continue()
  endif()
  execute_process(COMMAND "${CPACK_VARVE_STRIP}" --strip-debug "${lib}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "varve-dev: ${CPACK_VARVE_STRIP} --strip-debug ${lib} failed (${rc})")
  endif()
  # strip rewrites an archive's symbol index, and without the compiler's LTO
  # plugin it leaves the index of an LTO build empty: the compiler's ranlib
  # (gcc-ranlib, which has the plugin) writes it again.
  if(lib MATCHES "\\.a$" AND CPACK_VARVE_RANLIB)
    execute_process(COMMAND "${CPACK_VARVE_RANLIB}" "${lib}" RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "varve-dev: ${CPACK_VARVE_RANLIB} ${lib} failed (${rc})")
    endif()
  endif()
  math(EXPR _stripped "${_stripped} + 1")
endforeach()
message(STATUS "varve-dev: debug information taken out of ${_stripped} libraries")
