# Install rules: the float library, its headers, the bundled digits, a CMake package
# (find_package(tapegrad) gives tapegrad::tapegrad) and a pkg-config file. The install is
# relocatable: `cmake --install BUILD --prefix DIR` works for any DIR without reconfiguring.
# The package and tapegrad.pc locate the prefix from their own location and define
# TAPEGRAD_PACKAGE_DATA_DIR (DIR/share/tapegrad/data) for the programs compiled against them,
# which is how the static library's bundled_data_dir() learns where its digits went
# (tapegrad/data/dataset.hpp). tapegrad_dist and the tapegrad/dist/ headers are installed
# together (tapegrad::tapegrad_dist) when TAPEGRAD_INSTALL_DIST is ON (it needs MPI, and the
# target tapegrad_dist built before `cmake --install`); otherwise neither.
include(CMakePackageConfigHelpers)
set(TAPEGRAD_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/tapegrad)
set(TAPEGRAD_PKGCONFIG_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

option(TAPEGRAD_INSTALL_DIST "Install tapegrad_dist (MPI) and the tapegrad/dist/ headers" OFF)
set(tapegrad_install_targets tapegrad)
if(TAPEGRAD_INSTALL_DIST)
  if(NOT TARGET tapegrad_dist)
    message(FATAL_ERROR "TAPEGRAD_INSTALL_DIST is ON but tapegrad_dist is not built: MPI was not "
                        "found (bash scripts/setup.sh mpi) or TAPEGRAD_MPI is OFF")
  endif()
  list(APPEND tapegrad_install_targets tapegrad_dist)
endif()

install(TARGETS ${tapegrad_install_targets} EXPORT tapegradTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TAPEGRAD_INSTALL_DIST)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/tapegrad DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
else()
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/tapegrad DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
          PATTERN dist EXCLUDE)
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/data/ DESTINATION ${TAPEGRAD_INSTALL_DATADIR}
        FILES_MATCHING PATTERN "*-ubyte.gz" PATTERN "README.md")
install(EXPORT tapegradTargets NAMESPACE tapegrad:: DESTINATION ${TAPEGRAD_CMAKE_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/tapegradConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/tapegradConfig.cmake
                              INSTALL_DESTINATION ${TAPEGRAD_CMAKE_DIR}
                              PATH_VARS TAPEGRAD_INSTALL_DATADIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tapegradConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/tapegradConfig.cmake
              ${PROJECT_BINARY_DIR}/tapegradConfigVersion.cmake
        DESTINATION ${TAPEGRAD_CMAKE_DIR})

# tapegrad.pc names the prefix relative to its own directory (${pcfiledir}), so it is right
# wherever the install lands.
if(IS_ABSOLUTE "${TAPEGRAD_PKGCONFIG_DIR}")
  message(FATAL_ERROR "tapegrad: CMAKE_INSTALL_LIBDIR must be relative for a relocatable install "
                      "(it is ${CMAKE_INSTALL_LIBDIR})")
endif()
file(RELATIVE_PATH TAPEGRAD_PC_TO_PREFIX /prefix/${TAPEGRAD_PKGCONFIG_DIR} /prefix)
# Without its trailing slash (../../ -> ../..): a `//` in tapegrad.pc's bare data path
# (TAPEGRAD_PACKAGE_DATA_PATH) would start a C++ comment in the compiler's -D.
string(REGEX REPLACE "/+$" "" TAPEGRAD_PC_TO_PREFIX "${TAPEGRAD_PC_TO_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/tapegrad.pc.in ${PROJECT_BINARY_DIR}/tapegrad.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/tapegrad.pc DESTINATION ${TAPEGRAD_PKGCONFIG_DIR})

if(TAPEGRAD_NATIVE)
  install(CODE "message(STATUS \"tapegrad: this library was compiled with -march=native: it runs \
only on CPUs with this machine's instruction set; configure with -DTAPEGRAD_NATIVE=OFF for one \
that runs on any x86-64 (README.md, Installing)\")")
endif()
