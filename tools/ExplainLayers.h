// `cnnc explain`'s per-layer panels: clicking a layer in the network graph or its row of the
// info table shows the IR nodes that layer became, before and after the pipeline, its
// gradient nodes (a training build) and the seed equations that those nodes and their ops
// cite, rendered. A layer is a non-source node of the inference network; a node of another
// function belongs to it when it carries the layer's .cnn location (autodiff locates each
// gradient node at the forward node it differentiates) or, unlocated (ONNX), its name or
// the name's prefix before a '.'.
#pragma once

#include "ir/IR.h"

#include <map>
#include <string>
#include <vector>

namespace cnnc::tools {

/// Whether node `n` (of any function of the build) belongs to `layer` (a node of the network).
bool belongsTo(const Node &n, const Node &layer);

/// What the panels show so far, per layer name: HTML blocks of IR and the equations cited.
struct LayerListings {
  std::map<std::string, std::string> blocks;
  std::map<std::string, std::vector<int>> eqs;
};

/// Adds to `acc` each layer's nodes in f as it is at one stage (called while the pipeline
/// runs, since the passes rewrite f in place): a training step's nodes in its forward,
/// backward (the gradient nodes) and update sections, other functions' in one block.
void addLayerListings(LayerListings &acc, const Function &network, const Function &f, const std::string &stage);

/// One hidden `<div class="panel" id="layer-NAME" data-layer="NAME">` per layer of
/// `network`: its blocks and its equations rendered. The page's script shows one on click.
std::string layerPanels(const Function &network, const LayerListings &acc);

/// The `cnnc info` table with each layer's row wrapped in a clickable
/// `<span class="layer-row" data-layer="NAME">`.
std::string linkedInfoTable(const std::string &infoTable, const Function &network);

} // namespace cnnc::tools
