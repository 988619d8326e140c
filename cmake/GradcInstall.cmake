# GradcInstall.cmake — what `cmake --install build --prefix P` puts under P, for
# any P chosen at install time (docs/install.md): the gradc executable,
# libgradc (shared and static: the compiler core and the run-time library
# in one library) with its public header, the man page gradc(1), gradc.pc
# for pkg-config and the CMake package gradc (gradcConfig.cmake, the
# exported targets gradc::gradc and gradc::runtime, gradc_generate()).
# Every installed path that names another is relative, so a prefix can be
# moved or copied after installation.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The same objects as gradc_compiler and gradc_runtime, compiled once
# (everything is position-independent: CMAKE_POSITION_INDEPENDENT_CODE).
set(gradc_objects $<TARGET_OBJECTS:gradc_compiler> $<TARGET_OBJECTS:gradc_runtime>)

# libgradc.so carries its dependencies (DT_NEEDED on the system's SQLite
# and xxHash), so a program links with -lgradc alone; only the public API
# (gradc_*) is exported.
add_library(gradc_shared SHARED ${gradc_objects})
target_link_libraries(gradc_shared PRIVATE ${SQLITE3_LINK_LIBRARIES} ${XXHASH_LINK_LIBRARIES}
                      ${CMAKE_DL_LIBS} m)
target_link_options(gradc_shared PRIVATE
                    -Wl,--version-script=${CMAKE_SOURCE_DIR}/cmake/libgradc.map)
set_target_properties(gradc_shared PROPERTIES
  OUTPUT_NAME gradc VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
  EXPORT_NAME runtime LINK_DEPENDS ${CMAKE_SOURCE_DIR}/cmake/libgradc.map)
target_include_directories(gradc_shared INTERFACE
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)

# libgradc.a: its users also link SQLite, xxHash, libdl and libm
# (pkg-config --static --libs gradc says so).
add_library(gradc_static STATIC ${gradc_objects})
find_package(Threads REQUIRED)
target_link_libraries(gradc_static INTERFACE sqlite3 xxhash Threads::Threads ${CMAKE_DL_LIBS} m)
set_target_properties(gradc_static PROPERTIES OUTPUT_NAME gradc EXPORT_NAME runtime_static)
target_include_directories(gradc_static INTERFACE
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)

install(TARGETS gradc gradc_shared gradc_static EXPORT gradcTargets
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${CMAKE_SOURCE_DIR}/runtime/gradc_runtime.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_SOURCE_DIR}/docs/gradc.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# pkg-config: every path from ${pcfiledir}, the directory gradc.pc is in.
set(pcdir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH GRADC_PC_TO_PREFIX /P/${pcdir} /P)
string(REGEX REPLACE "/$" "" GRADC_PC_TO_PREFIX "${GRADC_PC_TO_PREFIX}")
configure_file(${CMAKE_SOURCE_DIR}/cmake/gradc.pc.in ${CMAKE_BINARY_DIR}/gradc.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/gradc.pc DESTINATION ${pcdir})

# The CMake package: find_package(gradc) from any prefix.
set(cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/gradc)
install(EXPORT gradcTargets NAMESPACE gradc:: DESTINATION ${cmakedir})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/gradcConfig.cmake.in
  ${CMAKE_BINARY_DIR}/gradcConfig.cmake INSTALL_DESTINATION ${cmakedir})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/gradcConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/gradcConfig.cmake ${CMAKE_BINARY_DIR}/gradcConfigVersion.cmake
              ${CMAKE_SOURCE_DIR}/cmake/gradcGenerate.cmake
        DESTINATION ${cmakedir})
