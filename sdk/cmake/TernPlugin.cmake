# tern_add_plugin(<name> SOURCES <file>... [LIBRARIES <target>...])
#
# Builds a Tern plugin: a shared module named tern-<name>.so with hidden visibility, linked to the SDK.
# The module must define its manifest and entry point with TERN_PLUGIN (tern/sdk/plugin.hpp).
# When TERN_PLUGIN_OUTPUT_DIR is set, the module is written there.
function(tern_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "tern_add_plugin(${name}): SOURCES is required")
  endif()
  set(target tern_plugin_${name})
  string(REPLACE "-" "_" target ${target})
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE Tern::sdk ${ARG_LIBRARIES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME "tern-${name}"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  if(TERN_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${TERN_PLUGIN_OUTPUT_DIR})
  endif()
  set(TERN_LAST_PLUGIN_TARGET ${target} PARENT_SCOPE)
endfunction()
