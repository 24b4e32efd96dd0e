# `cmake --install` (issue 17): the cnnc compiler, the runtime archive every compiled library
# links, the C API's header, a CMake package (cnncConfig.cmake: the imported cnnc::cnnc and
# cnnc_add_model()) and a pkg-config file. Layout under the prefix:
#   bin/cnnc
#   lib/cnnc/libcnnc_rtapi.a          (the installed cnnc finds it there: codegen/Aot.cpp)
#   include/cnnc/CnncApi.h
#   lib/cmake/cnnc/cnncConfig.cmake, cnncConfigVersion.cmake
#   lib/pkgconfig/cnnc.pc             (relocatable: paths relative to the .pc file)
#   lib/python3.X/dist-packages/cnnc/ (the Python module, python/cnnc: CNNC_PYTHON_INSTALL_DIR)
#   share/bash-completion/completions/cnnc, share/man/man1/cnnc.1 (generated: tools/CliDocs.h)
include(CMakePackageConfigHelpers)
set(cnnc_bindir bin)
set(cnnc_includedir include)
set(cnnc_libdir lib)

# the installed binary still finds LLVM's shared library outside the default search path
set_target_properties(cnnc PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)
install(TARGETS cnnc RUNTIME DESTINATION ${cnnc_bindir})
install(FILES $<TARGET_FILE:cnnc_rtapi> DESTINATION ${cnnc_libdir}/cnnc)
install(FILES ${PROJECT_SOURCE_DIR}/runtime/CnncApi.h DESTINATION ${cnnc_includedir}/cnnc)
install(FILES ${PROJECT_BINARY_DIR}/share/bash-completion/completions/cnnc DESTINATION share/bash-completion/completions)
install(FILES ${PROJECT_BINARY_DIR}/share/man/man1/cnnc.1 DESTINATION share/man/man1)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/cnncConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/cnncConfig.cmake
                              INSTALL_DESTINATION ${cnnc_libdir}/cmake/cnnc
                              PATH_VARS cnnc_bindir cnnc_includedir)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cnncConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cnncConfig.cmake ${PROJECT_BINARY_DIR}/cnncConfigVersion.cmake
        DESTINATION ${cnnc_libdir}/cmake/cnnc)
configure_file(${PROJECT_SOURCE_DIR}/cmake/cnnc.pc.in ${PROJECT_BINARY_DIR}/cnnc.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/cnnc.pc DESTINATION ${cnnc_libdir}/pkgconfig)
if(EXISTS ${PROJECT_SOURCE_DIR}/python/cnnc)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/python/cnnc DESTINATION ${CNNC_PYTHON_INSTALL_DIR}
          PATTERN __pycache__ EXCLUDE)
endif()
