// The bash completion script and the man page of `cnnc`, generated from its CLI11 definition
// (tools/cnnc.cpp) so that neither can drift from the options the binary accepts. The build
// runs `cnnc --generate bash-completion|man` and `cmake --install` installs both
// (cmake/Install.cmake); options in the hidden group "" are left out of both.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace cnnc::tools {

/// A bash script defining `_cnnc` and `complete -F _cnnc cnnc`: subcommands as the first
/// word, each subcommand's options after a `-`, an option's choices (CLI11 IsMember /
/// CheckedTransformer) as its value, file names otherwise.
std::string bashCompletion(const CLI::App &app);

/// The man page (roff, man(7) macros): NAME, SYNOPSIS, one subsection per subcommand with its
/// options, defaults and choices, EXIT STATUS. `version` goes in the page's footer.
std::string manPage(const CLI::App &app, const std::string &version);

} // namespace cnnc::tools
