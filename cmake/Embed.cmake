# de_embed(<out.c> <symbol> <input>): turn a text file into a C array
# `const char *const <symbol>` (NUL-terminated) plus `<symbol>_len`, so embedded
# defaults and builtin rules live as readable files in the tree.
function(de_embed out symbol input)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DIN=${input} -DOUT=${out} -DSYM=${symbol}
            -P ${PROJECT_SOURCE_DIR}/cmake/EmbedRun.cmake
    DEPENDS ${input} ${PROJECT_SOURCE_DIR}/cmake/EmbedRun.cmake
    VERBATIM)
endfunction()
