# Run at every build (tools/CMakeLists.txt): writes `git describe` of the source tree into
# OUT as CNNC_GIT_DESCRIBE, touching OUT only when it changed (so nothing rebuilds needlessly).
execute_process(COMMAND git -C "${SRC}" describe --always --dirty --abbrev=12
                OUTPUT_VARIABLE desc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR desc STREQUAL "")
  set(desc "unknown")
endif()
file(WRITE "${OUT}.tmp" "#define CNNC_GIT_DESCRIBE \"${desc}\"\n")
configure_file("${OUT}.tmp" "${OUT}" COPYONLY)
