# What `cmake --install` puts where: the libraries (shared and static) with
# their headers, pkg-config files and a CMake package (find_package(importance)
# gives importance::importance, importance::importance-static,
# importance::importance-client and importance::importance-client-static),
# the man pages and the wire protocol's description, and, with importanced,
# its systemd units and sample configuration pointing at where they were
# installed.
include(CMakePackageConfigHelpers)

install(TARGETS importance importance-static importance-client importance-client-static
        EXPORT importanceTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
# protocol.h is public: the documented wire format (docs/protocol.md).
install(FILES include/importance/importance.h include/importance/client.h
              include/importance/protocol.h include/importance/client-sd-event.h
              include/importance/client-uv.h include/importance/client-glib.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/importance)

set(IMP_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/importance)
install(EXPORT importanceTargets NAMESPACE importance:: DESTINATION ${IMP_CMAKE_DIR})
configure_package_config_file(cmake/importanceConfig.cmake.in
  ${CMAKE_BINARY_DIR}/importanceConfig.cmake INSTALL_DESTINATION ${IMP_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/importanceConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/importanceConfig.cmake
              ${CMAKE_BINARY_DIR}/importanceConfigVersion.cmake
        DESTINATION ${IMP_CMAKE_DIR})

# The .pc files find the prefix from where they are, so that an install
# moved elsewhere (cmake --install --prefix DIR) still describes itself.
file(RELATIVE_PATH IMP_PC_PREFIX_FROM_PCDIR ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" IMP_PC_PREFIX_FROM_PCDIR "${IMP_PC_PREFIX_FROM_PCDIR}")
configure_file(cmake/importance.pc.in importance.pc @ONLY)
configure_file(cmake/importance-client.pc.in importance-client.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/importance.pc ${CMAKE_BINARY_DIR}/importance-client.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(FILES docs/man/imp.1 docs/man/impctl.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES docs/man/importanced.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES docs/protocol.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The units and the sample configuration are written for a /usr/local
# install with the configuration in /etc; here they get this install's
# paths.  A literal that is no longer in the file stops the configure step,
# so that a changed unit cannot be installed with a stale path.
set(IMP_SYSTEMD_UNITDIR lib/systemd/system CACHE STRING
    "where the systemd units go, relative to the prefix or absolute")
function(imp_install_with_paths src dest_dir)
  file(READ ${CMAKE_SOURCE_DIR}/${src} text)
  foreach(pair IN LISTS ARGN)
    string(REPLACE "=>" ";" pair "${pair}")
    list(GET pair 0 from)
    list(GET pair 1 to)
    string(FIND "${text}" "${from}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "${src} no longer says ${from}: update cmake/install.cmake")
    endif()
    string(REPLACE "${from}" "${to}" text "${text}")
  endforeach()
  get_filename_component(name ${src} NAME)
  file(WRITE ${CMAKE_BINARY_DIR}/installed/${name} "${text}")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/${src})
  install(FILES ${CMAKE_BINARY_DIR}/installed/${name} DESTINATION ${dest_dir})
endfunction()
if(TARGET importanced)
  set(IMP_CONFIG_FILE ${CMAKE_INSTALL_FULL_SYSCONFDIR}/importanced.conf)
  imp_install_with_paths(daemon/systemd/importanced.service ${IMP_SYSTEMD_UNITDIR}
    "/usr/local/sbin/importanced=>${CMAKE_INSTALL_FULL_SBINDIR}/importanced"
    "/etc/importanced.conf=>${IMP_CONFIG_FILE}"
    "file:///usr/share/doc/importance/protocol.md=>man:importanced(8) file://${CMAKE_INSTALL_FULL_DOCDIR}/protocol.md")
  imp_install_with_paths(daemon/systemd/importanced.socket ${IMP_SYSTEMD_UNITDIR})
  # the session agent: a systemd user unit, and an XDG autostart entry for
  # sessions without a systemd user instance
  set(IMP_SYSTEMD_USERUNITDIR lib/systemd/user CACHE STRING
      "where the systemd user units go, relative to the prefix or absolute")
  imp_install_with_paths(daemon/systemd/importanced-agent.service ${IMP_SYSTEMD_USERUNITDIR}
    "/usr/local/bin/importanced-agent=>${CMAKE_INSTALL_FULL_BINDIR}/importanced-agent")
  imp_install_with_paths(agent/importanced-agent.desktop ${CMAKE_INSTALL_SYSCONFDIR}/xdg/autostart
    "/usr/local/bin/importanced-agent=>${CMAKE_INSTALL_FULL_BINDIR}/importanced-agent")
  install(FILES docs/man/importanced-agent.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
  imp_install_with_paths(daemon/systemd/importanced.conf ${CMAKE_INSTALL_SYSCONFDIR}
    "/etc/importanced.conf=>${IMP_CONFIG_FILE}")
  # lets importanced own org.importance.Foreground1 on the system bus and
  # anyone call it (docs/foreground.md)
  install(FILES daemon/dbus-1/org.importance.Foreground1.conf DESTINATION ${CMAKE_INSTALL_DATADIR}/dbus-1/system.d)
endif()
