# The consumer programs, the same whichever way Varve was brought in
# (installed/ and fetch/ include this): the storage round trip always, and
# the same through a shared library of the user's (Varve's static libraries
# must be position-independent for it to link); the actor and testkit ones
# unless VARVE_STORAGE_ONLY.
add_executable(storage_roundtrip ${CMAKE_CURRENT_LIST_DIR}/storage_roundtrip.cpp)
target_link_libraries(storage_roundtrip PRIVATE Varve::storage)
add_library(storage_plugin SHARED ${CMAKE_CURRENT_LIST_DIR}/storage_plugin.cpp)
target_link_libraries(storage_plugin PRIVATE Varve::storage)
add_executable(plugin_roundtrip ${CMAKE_CURRENT_LIST_DIR}/plugin_roundtrip.cpp)
target_link_libraries(plugin_roundtrip PRIVATE storage_plugin)

if(NOT VARVE_STORAGE_ONLY)
  add_executable(actors_roundtrip ${CMAKE_CURRENT_LIST_DIR}/actors_roundtrip.cpp)
  target_link_libraries(actors_roundtrip PRIVATE Varve::actors)
  add_executable(runtime_roundtrip ${CMAKE_CURRENT_LIST_DIR}/runtime_roundtrip.cpp)
  target_link_libraries(runtime_roundtrip PRIVATE Varve::runtime)
  add_executable(testkit_roundtrip ${CMAKE_CURRENT_LIST_DIR}/testkit_roundtrip.cpp)
  target_link_libraries(testkit_roundtrip PRIVATE Varve::testkit)
endif()
