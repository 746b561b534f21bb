# Install-time script: the systemd unit with this installation's sbin path
# (the prefix is only known for sure when installing: `cmake --install
# --prefix`).  IN is the template, CAPS src/agent/parent_caps.h (the
# capabilities the parent keeps and those it uses at start: the unit's
# CapabilityBoundingSet); writes into DESTDIR + the unit directory.
set(unitdir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(unitdir "/usr/lib/systemd/system")
endif()
file(READ ${IN} text)
file(READ ${CAPS} caps)
string(REPLACE "\\\n" " " caps "${caps}")
set(bounding "")
foreach(list PARENT_CAPS_KEPT PARENT_CAPS_SETUP)
  if(NOT caps MATCHES "#define ${list} ([^\n]*)")
    message(FATAL_ERROR "${CAPS}: no ${list}")
  endif()
  string(REGEX REPLACE "[ \t,]+" " " names "${CMAKE_MATCH_1}")
  string(STRIP "${names}" names)
  string(APPEND bounding " ${names}")
endforeach()
string(STRIP "${bounding}" bounding)
string(REPLACE "@DE_CAPABILITIES@" "${bounding}" text "${text}")
string(REPLACE "@DE_SBINDIR@" "${CMAKE_INSTALL_PREFIX}/${SBINDIR}" text "${text}")
set(dest "$ENV{DESTDIR}${unitdir}")
file(MAKE_DIRECTORY "${dest}")
file(WRITE "${dest}/daemoneye.service" "${text}")
message(STATUS "Installing: ${dest}/daemoneye.service")
