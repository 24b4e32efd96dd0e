// Helpers shared by the frontend tests.
#pragma once

#include "frontend/CnnFrontend.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cnnc::test {

/// The example files of examples/, by stem ("vgg16", ...).
const std::vector<std::string> &exampleNames();
std::string examplePath(const std::string &stem);
std::string readFile(const std::string &path);

/// Parses an inline model (file name "t.cnn").
std::unique_ptr<Module> cnn(const std::string &text, const CnnOptions &opts = {});
/// The main function's node by name; fails the test if absent.
const Node &node(const Module &m, const std::string &name);
/// Total elements of every param node.
int64_t paramCount(const Function &f);
/// The message of the cnnc::Error that parsing `text` throws ("" if none is thrown).
std::string errorOf(const std::string &text, const CnnOptions &opts = {});

} // namespace cnnc::test
