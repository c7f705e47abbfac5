# Writes OUT, a header defining A2AMESH_REVISION: the git commit the sources
# are at ("unknown" outside a git checkout), "-dirty" when they differ from
# it. Run at every build (src/core/CMakeLists.txt); the header is rewritten
# only when the revision changes, so nothing rebuilds otherwise.
execute_process(COMMAND git -C "${SOURCE_DIR}" rev-parse --short=12 HEAD
                OUTPUT_VARIABLE revision OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE failed ERROR_QUIET)
if(failed OR revision STREQUAL "")
  set(revision "unknown")
else()
  execute_process(COMMAND git -C "${SOURCE_DIR}" diff --quiet HEAD --
                  RESULT_VARIABLE dirty ERROR_QUIET)
  if(dirty)
    string(APPEND revision "-dirty")
  endif()
endif()
file(WRITE "${OUT}.new" "#define A2AMESH_REVISION \"${revision}\"\n")
configure_file("${OUT}.new" "${OUT}" COPYONLY)
file(REMOVE "${OUT}.new")
