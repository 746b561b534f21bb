# Script half of de_embed: reads IN, writes OUT as a C byte array named SYM.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE ${OUT} "/* Generated from ${IN}; do not edit. */\n#include <stddef.h>\n"
  "extern const char *const ${SYM};\nextern const size_t ${SYM}_len;\n"
  "static const unsigned char bytes_[] = {\n${bytes}0x00};\n"
  "const char *const ${SYM} = (const char *)bytes_;\n"
  "const size_t ${SYM}_len = ${len};\n")
