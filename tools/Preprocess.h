// Input preprocessing as part of the model: `cnnc train` computes the per-pixel mean of the
// training images and stores it with the weights, and the model subtracts it itself, so that
// every user of the trained model (cnnc run, a compiled .so, the C and Python examples) feeds
// raw pixels (0-255 for MNIST), as the data files hold them.
//
// The transform adds two non-trainable params right after the image input %X (the first
// float input) and routes every use of %X through them:
//   %X.mean  = param {init="zeros", trainable=0} : f32[C,H,W]   (per-pixel training mean)
//   %X.scale = param {init="ones", trainable=0}  : f32[]        (1 for MatConvNet's BASE)
//   %X.centered = sub(%X, %X.mean);  %X.scaled = mul(%X.centered, %X.scale)
// Being params, they travel in the .npz like any weight, are embedded or loaded by a .so, and
// SGD leaves them alone (trainable=0, docs/training.md). A weights file that holds
// `<input>.mean` asks for the transform (cnnc run/compile/export --weights apply it).
#pragma once

#include "ir/IR.h"

#include <string>

namespace cnnc::tools {

/// The image input the preprocessing applies to: the first float `input` of rank >= 2.
const Node *preprocessedInput(const Function &f);

/// Rebuilds every function of m with the preprocessing params (see above). Functions without
/// an image input are left alone. Idempotent: a function that already has them is unchanged.
void addInputPreprocessing(Module &m);

/// Whether the weights file (.npz) carries the preprocessing params of m's image input
/// (arrays `<input>.mean` and `<input>.scale`), as `cnnc train` writes them.
bool weightsHavePreprocessing(const Module &m, const std::string &npzPath);

} // namespace cnnc::tools
