# varve_add_warnings(<dir>)
#
# Compiles every target defined in <dir> and the directories below it with
# -Wall -Wextra, and -Werror when VARVE_WERROR is ON. The flags are PRIVATE
# to each target: they reach neither the targets of a project that adds Varve
# nor the users of Varve's libraries. They go before the target's other
# options (where a directory's add_compile_options would put them).
function(varve_add_warnings dir)
  set(flags -Wall -Wextra)
  if(VARVE_WERROR)
    list(APPEND flags -Werror)
  endif()
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target IN LISTS targets)
    get_target_property(type ${target} TYPE)
    if(type MATCHES "^(EXECUTABLE|STATIC_LIBRARY|SHARED_LIBRARY|MODULE_LIBRARY|OBJECT_LIBRARY)$")
      get_target_property(options ${target} COMPILE_OPTIONS)
      if(NOT options)
        set(options "")
      endif()
      set_property(TARGET ${target} PROPERTY COMPILE_OPTIONS ${flags} ${options})
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(subdir IN LISTS subdirs)
    varve_add_warnings(${subdir})
  endforeach()
endfunction()
