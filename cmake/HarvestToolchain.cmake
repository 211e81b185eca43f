# Compiler set-up shared by every harvest target.

find_program(HARVEST_CCACHE ccache)
if(HARVEST_CCACHE)
  # PCH + ccache needs these sloppiness flags to get cache hits.
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env
      "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      ${HARVEST_CCACHE})
  message(STATUS "ccache: ${HARVEST_CCACHE}")
endif()

set(HARVEST_WARNINGS -Wall -Wextra -Wpedantic -Wno-unused-parameter)
if(HARVEST_WERROR)
  list(APPEND HARVEST_WARNINGS -Werror)
endif()

if(HARVEST_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# harvest_target(<target>): project-code warnings; third-party headers are SYSTEM includes.
function(harvest_target target)
  target_compile_options(${target} PRIVATE ${HARVEST_WARNINGS})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
endfunction()

# harvest_torch_target(<target>): links LibTorch and reuses one precompiled header.
function(harvest_torch_target target)
  harvest_target(${target})
  target_link_libraries(${target} PUBLIC harvest::torch)
  if(HARVEST_PCH)
    if(TARGET harvest_torch_pch AND NOT target STREQUAL "harvest_torch_pch")
      target_precompile_headers(${target} REUSE_FROM harvest_torch_pch)
    endif()
  endif()
endfunction()
