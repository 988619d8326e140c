# gradcGenerate.cmake — gradc_generate(), the bison_target() of gradients:
#
#   gradc_generate(<target> <file.grad>
#                  [NAME <name>]      generated files <name>.c and <name>.h
#                                     (default: the .grad file's name)
#                  [FUNC <function>]  only this function of the file
#                                     (default: every function in it)
#                  [PREFIX <prefix>]  prepended to every external symbol
#                                     and macro (gradc emit --prefix)
#                  [FLOAT]            single precision (gradc emit --float)
#                  [FREEZE]           network weights become constants
#                  [OPTIONS <arg>...] further gradc emit options)
#
# runs `gradc emit` at build time (again whenever the .grad file or gradc
# changes) into ${CMAKE_CURRENT_BINARY_DIR}/gradc/, adds the .c and .h to
# <target>'s sources, that directory to its include path and libm to its
# libraries, and sets GRADC_<name>_SOURCE and GRADC_<name>_HEADER in the
# caller's scope. The generated code depends on nothing else.
function(gradc_generate target file)
  cmake_parse_arguments(PARSE_ARGV 2 G "FLOAT;FREEZE" "NAME;FUNC;PREFIX" "OPTIONS")
  if(G_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "gradc_generate: unknown arguments: ${G_UNPARSED_ARGUMENTS}")
  endif()
  get_filename_component(file ${file} ABSOLUTE)
  if(NOT G_NAME)
    get_filename_component(G_NAME ${file} NAME_WE)
  endif()
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/gradc)
  set(c ${dir}/${G_NAME}.c)
  set(h ${dir}/${G_NAME}.h)
  set(args ${G_OPTIONS})
  if(G_FUNC)
    list(APPEND args --func ${G_FUNC})
  endif()
  if(G_PREFIX)
    list(APPEND args --prefix ${G_PREFIX})
  endif()
  if(G_FLOAT)
    list(APPEND args --float)
  endif()
  if(G_FREEZE)
    list(APPEND args --freeze)
  endif()
  add_custom_command(OUTPUT ${c} ${h}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
    COMMAND gradc::gradc emit ${file} ${args} -o ${c} --header ${h}
    DEPENDS ${file} gradc::gradc
    COMMENT "gradc emit ${G_NAME}"
    VERBATIM)
  target_sources(${target} PRIVATE ${c} ${h})
  target_include_directories(${target} PRIVATE ${dir})
  if(UNIX AND NOT APPLE)
    target_link_libraries(${target} PRIVATE m)
  endif()
  set(GRADC_${G_NAME}_SOURCE ${c} PARENT_SCOPE)
  set(GRADC_${G_NAME}_HEADER ${h} PARENT_SCOPE)
endfunction()
