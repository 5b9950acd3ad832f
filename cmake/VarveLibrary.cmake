# varve_library(<target> <name>)
#
# Makes the library <target> (made with add_library) one of Varve's
# libraries: it is varve::<name> inside this tree and Varve::<name> for a
# project that adds Varve with FetchContent or add_subdirectory, and it is
# exported (cmake/VarvePackage.cmake) as Varve::<name>, the name an installed
# package's users see. Its users compile as C++20 at least. Built shared
# (BUILD_SHARED_LIBS), it is libvarve_<name>.so.<major>.<minor> before 1.0, as
# a minor release may break the ABI then, .so.<major> after. Built static, it
# is position-independent all the same, so that a user's shared library (a
# plugin, a language binding) can link it.
function(varve_library target name)
  add_library(varve::${name} ALIAS ${target})
  add_library(Varve::${name} ALIAS ${target})
  if(PROJECT_VERSION_MAJOR EQUAL 0)
    set(soversion ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
  else()
    set(soversion ${PROJECT_VERSION_MAJOR})
  endif()
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name} VERSION ${PROJECT_VERSION}
                                             SOVERSION ${soversion} POSITION_INDEPENDENT_CODE ON)
  # Calls between Varve's own functions stay direct and inlinable under
  # -fPIC (GCC otherwise assumes any of them may be interposed).
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -fno-semantic-interposition)
  endif()
  target_compile_features(${target} PUBLIC cxx_std_20)
endfunction()
