# Install-time script: the systemd unit with this installation's sbin path
# (the prefix is only known for sure when installing: `cmake --install
# --prefix`).  IN is the template; writes into DESTDIR + the unit directory.
set(unitdir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(unitdir "/usr/lib/systemd/system")
endif()
file(READ ${IN} text)
string(REPLACE "@DE_SBINDIR@" "${CMAKE_INSTALL_PREFIX}/${SBINDIR}" text "${text}")
set(dest "$ENV{DESTDIR}${unitdir}")
file(MAKE_DIRECTORY "${dest}")
file(WRITE "${dest}/daemoneye.service" "${text}")
message(STATUS "Installing: ${dest}/daemoneye.service")
