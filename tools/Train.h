// `cnnc train` (docs/cli.md): the training loop around a Trainer (tools/Trainer.h). Per
// epoch: the training examples in a seeded shuffled order (tools/Data.h), one SGD step per
// mini-batch, evaluation of the test set with @infer, a CSV row, the plot, a checkpoint.
// Defaults are the seed's Exercise 6 (MatConvNet's cnn_mnist): lr 0.001, momentum 0.9,
// weight decay 5e-4, batch 100, 20 epochs, raw 0-255 pixels minus the per-pixel mean.
#pragma once

#include "tools/Data.h"
#include "tools/Trainer.h"

#include <functional>
#include <iosfwd>

namespace cnnc::tools {

struct TrainOptions {
  TrainModelSpec model;
  std::string data = "mnist"; // mnist | fashion-mnist | a directory of IDX files
  int64_t epochs = 20;
  interp::Hyper hyper;                 // lr 0.001, momentum 0.9, weight decay 5e-4
  uint64_t seed = 0;                   // initial weights and the data order
  int64_t trainSize = 0, testSize = 0; // > 0: only N examples (the test split's first N)
  Subset trainSubset = Subset::Stratified; // which N training examples (seeded by `seed`)
  int64_t trainOffset = 0; // > 0: skip that many first (file order; needs Subset::First)
  std::string resume;                  // a checkpoint.npz to continue from
  std::string outDir;                  // log.csv, plot.png, checkpoint.npz, weights.npz
  std::string progress = "auto";       // auto (a bar on a TTY, else lines) | bar | lines | none
  bool plot = true;
  std::function<std::unique_ptr<Trainer>(const TrainModelSpec &)> makeTrainer = makeInterpTrainer;
};

struct EpochRecord {
  int64_t epoch = 0;
  double trainLoss = 0, trainError = 0, testLoss = 0, testError = 0; // errors as fractions
  double seconds = 0,
         imagesPerSecond = 0; // the epoch's wall time (with evaluation); training throughput
};

struct TrainResult {
  std::vector<EpochRecord> history; // every epoch, including those before a resume
  std::string weightsPath, checkpointPath, logPath, plotPath;
  State state; // the final state (every param of @train_step)
  /// SIGINT or SIGTERM stopped the run after a step (its checkpoint is written), else 0.
  int interruptedBy = 0;
};

/// Trains; prints one line per epoch and a summary to `out`, progress to stderr. On SIGINT or
/// SIGTERM it finishes the current step, writes a checkpoint of that point, says how to
/// resume, and returns with interruptedBy set (resuming continues bit for bit). Throws
/// cnnc::Error for bad data, a checkpoint that does not fit, or a loss that turns NaN/Inf
/// (naming the epoch and step).
TrainResult train(const TrainOptions &opts, std::ostream &out);

/// Reads a checkpoint written by train(): the state, and the epochs done so far.
struct Checkpoint {
  State state;
  int64_t epoch = 0;
  uint64_t step = 0;
  std::vector<EpochRecord> history;
  double seed = 0, batch = 0, trainSize = 0;
  /// Which training examples (--train-size / --train-subset): 0 all, 1 the first trainSize,
  /// 2 the stratified subset of trainSize (seeded by `seed`); -1 for a checkpoint written
  /// before it was recorded.
  int subset = -1;
  /// --train-offset (0 when not recorded: a checkpoint written before it existed).
  double trainOffset = 0;
  /// An interrupted run's checkpoint: epoch `partialEpoch` had done `partialSteps` steps with
  /// these running sums (partialEpoch 0: the checkpoint is at the end of `epoch`).
  int64_t partialEpoch = 0, partialSteps = 0, partialCorrect = 0, partialSeen = 0;
  double partialLoss = 0;
};
Checkpoint readCheckpoint(const std::string &path);

} // namespace cnnc::tools
