# The debuggers' side of the build (docs/debugging.md):
# - compile_commands.json in every build directory, for clangd / VS Code's IntelliSense
#   (.vscode/settings.json points them at build/debug's);
# - the install ships the gdb printers, commands and skip rules in <prefix>/share/tapegrad/gdb
#   (gdb -ix <prefix>/share/tapegrad/gdb/gdbinit ./my_program, or `source` its tapegrad.py in
#   ~/.gdbinit) and the lldb module in <prefix>/share/tapegrad/lldb. tapegrad is a static
#   library, so there is no libtapegrad.so for gdb's auto-load directory to key on.
# CMake itself makes this cache entry before the project is read, empty (= off) unless the
# environment variable of the same name is set, so a plain set(... CACHE) would change nothing:
# an empty entry is turned on; an explicit -DCMAKE_EXPORT_COMPILE_COMMANDS=OFF stays off.
if(PROJECT_IS_TOP_LEVEL AND "$CACHE{CMAKE_EXPORT_COMPILE_COMMANDS}" STREQUAL "")
  set(CMAKE_EXPORT_COMPILE_COMMANDS ON CACHE BOOL "Write compile_commands.json (clangd, IDEs)" FORCE)
endif()
if(TAPEGRAD_INSTALL)
  install(FILES scripts/gdb/gdbinit scripts/gdb/tapegrad.py scripts/gdb/tapegrad-skip.gdb
                scripts/gdb/skip.gdb
          DESTINATION ${CMAKE_INSTALL_DATADIR}/tapegrad/gdb)
  install(FILES scripts/lldb/lldbinit scripts/lldb/tapegrad_lldb.py
          DESTINATION ${CMAKE_INSTALL_DATADIR}/tapegrad/lldb)
endif()
