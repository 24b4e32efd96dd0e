#include "tools/Train.h"

#include "io/Npz.h"

#include <fmt/format.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>

namespace fs = std::filesystem;

namespace cnnc::tools {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string hms(double s) {
  if (!std::isfinite(s) || s < 0)
    return "--:--";
  long t = std::lround(s);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
                   : fmt::format("{}:{:02}", t / 60, t % 60);
}

// Progress on stderr: a bar redrawn in place on a terminal; in a log (not a TTY) a plain
// line at most every 30 s, so that CI logs hold no carriage returns or escape codes.
class Progress {
public:
  explicit Progress(const std::string &mode) {
    bool tty = isatty(fileno(stderr));
    bar_ = mode == "bar" || (mode == "auto" && tty);
    lines_ = mode == "lines" || (mode == "auto" && !tty);
  }
  void update(int64_t epoch, int64_t epochs, int64_t step, int64_t steps, double loss, double acc,
              double ips, double eta) {
    double now = since(start_);
    if (bar_ && (now - last_ >= 0.1 || step == steps)) {
      const int width = 24;
      int fill = (int)(width * step / std::max<int64_t>(steps, 1));
      std::fprintf(
          stderr,
          "\r\033[Kepoch %lld/%lld [%s%s] %lld/%lld  loss %.4f  acc %.2f%%  %.0f img/s  ETA %s",
          (long long)epoch, (long long)epochs, std::string(fill, '=').c_str(),
          std::string(width - fill, ' ').c_str(), (long long)step, (long long)steps, loss,
          100 * acc, ips, hms(eta).c_str());
      std::fflush(stderr);
      drawn_ = true;
      last_ = now;
    } else if (lines_ && now - last_ >= 30) {
      std::fprintf(stderr,
                   "  epoch %lld/%lld step %lld/%lld  loss %.4f  acc %.2f%%  %.0f img/s  ETA %s\n",
                   (long long)epoch, (long long)epochs, (long long)step, (long long)steps, loss,
                   100 * acc, ips, hms(eta).c_str());
      last_ = now;
    }
  }
  void status(const std::string &what) {
    if (bar_) {
      std::fprintf(stderr, "\r\033[K%s", what.c_str());
      std::fflush(stderr);
      drawn_ = true;
    }
  }
  void clear() { // before a line on stdout, which may be the same terminal
    if (drawn_) {
      std::fprintf(stderr, "\r\033[K");
      std::fflush(stderr);
      drawn_ = false;
    }
  }

private:
  bool bar_ = false, lines_ = false, drawn_ = false;
  Clock::time_point start_ = Clock::now();
  double last_ = 0;
};

io::Array scalars(const std::vector<double> &v) {
  return io::Array::fromDoubles(v, {(int64_t)v.size()});
}

// SIGINT/SIGTERM during training: the handler only records the signal; the loop finishes the
// step it is in, writes a checkpoint of that point and stops (no lost work).
volatile std::sig_atomic_t g_signal = 0;
void onStopSignal(int sig) { g_signal = sig; }

// Installs the handlers for the life of a training run, then restores the previous ones.
struct StopSignals {
  struct sigaction oldInt {}, oldTerm {};
  StopSignals() {
    g_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = onStopSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &oldInt);
    sigaction(SIGTERM, &sa, &oldTerm);
  }
  ~StopSignals() {
    sigaction(SIGINT, &oldInt, nullptr);
    sigaction(SIGTERM, &oldTerm, nullptr);
  }
};

// Test hook (tests/train/interrupt_resume.sh): CNNC_TEST_SIGNAL=N:INT|TERM|KILL sends the
// signal to this process right after global step N, a reproducible "user presses Ctrl-C" or
// "the machine dies" at a seeded point; 0 = off.
struct TestSignal {
  uint64_t afterStep = 0;
  int sig = 0;
};
TestSignal testSignalFromEnv() {
  TestSignal t;
  const char *e = std::getenv("CNNC_TEST_SIGNAL");
  if (!e)
    return t;
  std::string s = e;
  size_t colon = s.find(':');
  std::string name = colon == std::string::npos ? "" : s.substr(colon + 1);
  t.sig = name == "INT" ? SIGINT : name == "TERM" ? SIGTERM : name == "KILL" ? SIGKILL : 0;
  t.afterStep = t.sig ? std::strtoull(s.c_str(), nullptr, 10) : 0;
  return t;
}

// Where an epoch stopped: its number, the steps done and the running sums of its training
// loss and accuracy (stored in the checkpoint so that a resumed epoch reports the same).
struct Partial {
  int64_t epoch = 0, stepsDone = 0, correct = 0, seen = 0;
  double lossSum = 0;
};

// Which training examples a run uses, as its checkpoint records it (Checkpoint::subset).
int subsetCode(const TrainOptions &o) {
  return o.trainSize <= 0 ? 0 : o.trainSubset == Subset::First ? 1 : 2;
}
std::string subsetText(int code, double n, double offset) {
  std::string text = code == 0   ? fmt::format("all {} training examples", n)
                     : code == 1 ? fmt::format("--train-size {} --train-subset first", n)
                                 : fmt::format("--train-size {} --train-subset stratified", n);
  return offset > 0 ? fmt::format("{} --train-offset {}", text, offset) : text;
}

void writeCheckpoint(const std::string &path, const State &state, int64_t epoch, uint64_t step,
                     const std::vector<EpochRecord> &history, const TrainOptions &o,
                     int64_t trainN, const Partial *partial = nullptr) {
  std::map<std::string, io::Array> a;
  for (const auto &[k, v] : state)
    a[k] = io::Array::fromFloats(v, {(int64_t)v.size()});
  a["__epoch__"] = scalars({(double)epoch});
  a["__step__"] = scalars({(double)step});
  a["__config__"] = scalars({(double)o.seed, (double)o.model.batch, (double)trainN, o.hyper.lr,
                             o.hyper.momentum, o.hyper.weightDecay, (double)subsetCode(o),
                             (double)o.trainOffset});
  std::vector<double> h;
  for (const EpochRecord &r : history)
    h.insert(h.end(), {(double)r.epoch, r.trainLoss, r.trainError, r.testLoss, r.testError,
                       r.seconds, r.imagesPerSecond});
  a["__history__"] = io::Array::fromDoubles(h, {(int64_t)history.size(), 7});
  if (partial) // f64: the sums and counts round-trip exactly
    a["__partial__"] = scalars({(double)partial->epoch, (double)partial->stepsDone,
                                partial->lossSum, (double)partial->correct, (double)partial->seen});
  io::writeNpz(path, a); // atomic: temp file, fsync, rename (io/Npz.cpp)
}

void writeLog(const std::string &path, const std::vector<EpochRecord> &history) {
  std::ofstream os(path);
  os << "epoch,train_loss,train_error,test_loss,test_error,seconds,images_per_s\n";
  for (const EpochRecord &r : history)
    os << fmt::format("{},{:.6f},{:.6f},{:.6f},{:.6f},{:.3f},{:.1f}\n", r.epoch, r.trainLoss,
                      r.trainError, r.testLoss, r.testError, r.seconds, r.imagesPerSecond);
  if (!os)
    throw Error(fmt::format("cannot write {}", path));
}

bool onPath(const std::string &exe) {
  const char *path = std::getenv("PATH");
  if (!path)
    return false;
  std::string p = path;
  for (size_t i = 0, j; i <= p.size(); i = j + 1) {
    j = p.find(':', i);
    if (j == std::string::npos)
      j = p.size();
    fs::path cand = fs::path(p.substr(i, j - i)) / exe;
    if (access(cand.c_str(), X_OK) == 0)
      return true;
  }
  return false;
}

// Loss and error per epoch, two panels, with gnuplot's pngcairo terminal (gnuplot-nox).
// Returns "" or a note saying why there is no plot.
std::string writePlot(const std::string &dir, const std::string &title, size_t epochs) {
  if (!onPath("gnuplot"))
    return "gnuplot not found: no plot (apt-get install gnuplot-nox)";
  std::string gp = (fs::path(dir) / "plot.gp").string();
  std::ofstream os(gp);
  os << "# written by cnnc train: gnuplot plot.gp (in this directory) redraws plot.png\n"
     << "set terminal pngcairo size 1000,420 font ',10'\nset output 'plot.png'\n"
     << "set termoption noenhanced\nset datafile separator ','\nset grid\nset key top right\nset "
        "xlabel 'epoch'\n"
     << (epochs <= 25 ? "set xtics 1\n" : "")
     << fmt::format("set multiplot layout 1,2 title '{}'\n", title) << "set ylabel 'loss'\n"
     << "plot 'log.csv' every ::1 using 1:2 with linespoints title 'train', "
        "'' every ::1 using 1:4 with linespoints title 'test'\n"
     << "set ylabel 'error (%)'\n"
     << "plot 'log.csv' every ::1 using 1:($3*100) with linespoints title 'train', "
        "'' every ::1 using 1:($5*100) with linespoints title 'test'\n"
     << "unset multiplot\n";
  os.close();
  std::string cmd = fmt::format("cd '{}' && gnuplot plot.gp > plot.err 2>&1", dir);
  if (std::system(cmd.c_str()) != 0)
    return fmt::format("gnuplot failed (see {}/plot.err): no plot", dir);
  fs::remove(fs::path(dir) / "plot.err");
  return "";
}

void toFloats(const Split &s, int64_t pixels, const int64_t *idx, int64_t n, std::vector<float> &x,
              std::vector<int32_t> &y) {
  x.resize(n * pixels);
  y.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t *src = s.images.data() + idx[i] * pixels;
    std::copy(src, src + pixels, x.begin() + i * pixels);
    y[i] = s.labels[idx[i]];
  }
}

struct Eval {
  double loss = 0, error = 0;
};

Eval evaluate(Trainer &t, const Dataset &d, int64_t batch, int64_t classes) {
  std::vector<int64_t> idx(d.test.n);
  for (int64_t i = 0; i < d.test.n; ++i)
    idx[i] = i;
  std::vector<float> x, scores(batch * classes);
  std::vector<int32_t> y;
  double loss = 0;
  int64_t wrong = 0;
  for (int64_t b = 0; b < d.test.n; b += batch) {
    int64_t n = std::min(batch, d.test.n - b);
    toFloats(d.test, d.pixels, idx.data() + b, n, x, y);
    t.infer(x.data(), n, scores.data());
    for (int64_t i = 0; i < n; ++i) {
      const float *p = scores.data() + i * classes;
      int64_t best = std::max_element(p, p + classes) - p;
      wrong += best != y[i];
      loss -= std::log(std::max((double)p[y[i]], 1e-45));
    }
  }
  return {loss / (double)std::max<int64_t>(d.test.n, 1),
          (double)wrong / (double)std::max<int64_t>(d.test.n, 1)};
}

} // namespace

Checkpoint readCheckpoint(const std::string &path) {
  std::map<std::string, io::Array> a;
  try {
    a = io::readNpz(path);
  } catch (const io::FormatError &e) {
    throw Error(e.what());
  }
  for (const char *k : {"__epoch__", "__step__", "__config__", "__history__"})
    if (!a.count(k))
      throw Error(fmt::format("'{}' is not a cnnc train checkpoint (no {})", path, k));
  Checkpoint c;
  for (auto &[k, v] : a) {
    if (k.starts_with("__"))
      continue;
    std::vector<double> d = v.toDoubles();
    c.state[k] = std::vector<float>(d.begin(), d.end()); // f32 in the file: exact
  }
  c.epoch = (int64_t)a["__epoch__"].toDoubles().at(0);
  c.step = (uint64_t)a["__step__"].toDoubles().at(0);
  std::vector<double> cfg = a["__config__"].toDoubles();
  if (cfg.size() < 3)
    throw Error(fmt::format("'{}': malformed checkpoint (__config__)", path));
  c.seed = cfg[0];
  c.batch = cfg[1];
  c.trainSize = cfg[2];
  c.subset = cfg.size() >= 7 ? (int)cfg[6] : -1;
  c.trainOffset = cfg.size() >= 8 ? cfg[7] : 0;
  if (auto it = a.find("__partial__"); it != a.end()) {
    std::vector<double> p = it->second.toDoubles();
    if (p.size() != 5)
      throw Error(fmt::format("'{}': malformed checkpoint (__partial__)", path));
    c.partialEpoch = (int64_t)p[0], c.partialSteps = (int64_t)p[1], c.partialLoss = p[2];
    c.partialCorrect = (int64_t)p[3], c.partialSeen = (int64_t)p[4];
  }
  std::vector<double> h = a["__history__"].toDoubles();
  for (size_t i = 0; i + 7 <= h.size(); i += 7)
    c.history.push_back(
        {(int64_t)h[i], h[i + 1], h[i + 2], h[i + 3], h[i + 4], h[i + 5], h[i + 6]});
  return c;
}

TrainResult train(const TrainOptions &o, std::ostream &out) {
  if (o.epochs < 1)
    throw Error("--epochs must be at least 1");
  std::string subsetNote;
  Dataset d = loadDataset(o.data, o.trainSize, o.testSize, o.trainSubset, o.seed, &subsetNote,
                          o.trainOffset);
  if (d.overlap)
    std::fprintf(stderr, "warning: %lld test images of '%s' are identical to training images\n",
                 (long long)d.overlap, d.dir.c_str());

  std::unique_ptr<Trainer> t = o.makeTrainer(o.model);
  TrainModule m = loadTrainModule(o.model, o.model.batch);
  const Node *in = m.trainStep->find(m.imageInput);
  int64_t perExample = in->type.numel() / in->type.shape[0];
  if (perExample != d.pixels)
    throw Error(fmt::format("the model's input %{} is {} per example, the images of '{}' are {}",
                            m.imageInput,
                            shapeStr(Shape(in->type.shape.begin() + 1, in->type.shape.end())),
                            d.dir, fmt::join(d.exampleShape, "x")));
  const int64_t classes = m.infer->outputs()[0]->type.shape[1];
  if (d.classes > classes)
    throw Error(
        fmt::format("'{}' has {} classes, the model predicts {}", d.dir, d.classes, classes));

  TrainResult r;
  fs::create_directories(o.outDir);
  r.logPath = (fs::path(o.outDir) / "log.csv").string();
  r.plotPath = (fs::path(o.outDir) / "plot.png").string();
  r.checkpointPath = (fs::path(o.outDir) / "checkpoint.npz").string();
  r.weightsPath = (fs::path(o.outDir) / "weights.npz").string();

  // The state: seeded initial weights (an ONNX model's initializers where it has them) and
  // the training set's mean, or a checkpoint's.
  int64_t firstEpoch = 1;
  uint64_t globalStep = 0;
  Partial resumeAt; // an interrupted epoch to finish first
  StopSignals stopSignals;
  const TestSignal testSignal = testSignalFromEnv();
  const std::string meanName = m.imageInput + ".mean";
  if (o.resume.empty()) {
    State s = initialState(*m.trainStep, o.seed);
    for (const auto &[name, v] : m.weights) // an ONNX model starts from its initializers
      if (auto it = s.find(name); it != s.end() && it->second.size() == v.size())
        it->second = v;
    s.at(meanName) = pixelMean(d.train, d.pixels);
    t->setState(s);
  } else {
    Checkpoint c = readCheckpoint(o.resume);
    if (c.batch != (double)o.model.batch || c.trainSize != (double)d.train.n ||
        c.seed != (double)o.seed)
      throw Error(fmt::format(
          "--resume {}: the checkpoint was trained with --batch {} --seed {} on {} examples, "
          "this run has --batch {} --seed {} and {} (resume with the same settings)",
          o.resume, c.batch, c.seed, c.trainSize, o.model.batch, o.seed, d.train.n));
    // the same number of examples may still be other examples: the subset's choice must match
    if (c.subset < 0)
      std::fprintf(stderr, "warning: --resume %s: the checkpoint does not record which training "
                           "examples it used (--train-subset); only their number is checked\n",
                   o.resume.c_str());
    else if (c.subset != subsetCode(o) || c.trainOffset != (double)o.trainOffset)
      throw Error(fmt::format("--resume {}: the checkpoint was trained on {}, this run asks for {} "
                              "(resume with the same choice)",
                              o.resume, subsetText(c.subset, c.trainSize, c.trainOffset),
                              subsetText(subsetCode(o), (double)d.train.n,
                                         (double)o.trainOffset)));
    State want = t->state();
    for (const auto &[k, v] : want)
      if (!c.state.count(k))
        throw Error(fmt::format(
            "--resume {}: the checkpoint has no parameter '{}' (another model?)", o.resume, k));
    t->setState(c.state);
    firstEpoch = c.epoch + 1;
    globalStep = c.step;
    r.history = c.history;
    if (c.partialEpoch) {
      resumeAt = {c.partialEpoch, c.partialSteps, c.partialCorrect, c.partialSeen, c.partialLoss};
      out << fmt::format("resumed from {} in epoch {} after step {} (global step {})\n", o.resume,
                         c.partialEpoch, c.partialSteps, c.step);
    } else {
      out << fmt::format("resumed from {} after epoch {} (step {})\n", o.resume, c.epoch, c.step);
    }
  }

  out << fmt::format("training {} on {} ({} train / {} test images, {} classes; backend {})\n",
                     o.model.path, d.dir, d.train.n, d.test.n, classes, t->backend());
  if (!d.classNames.empty()) { // an image folder: which label is which folder
    std::string names;
    for (size_t i = 0; i < d.classNames.size(); ++i)
      names += fmt::format("{}{} {}", i ? ", " : "", i, d.classNames[i]);
    out << fmt::format("  classes (folders sorted by name): {}\n", names);
  }
  out << fmt::format("  epochs {}, batch {}, lr {:g}, momentum {:g}, weight decay {:g}, seed {}\n",
                     o.epochs, o.model.batch, o.hyper.lr, o.hyper.momentum, o.hyper.weightDecay,
                     o.seed);
  if (!subsetNote.empty())
    out << "  training examples: " << subsetNote << "\n";
  if (o.resume.empty() && !m.weights.empty())
    out << fmt::format("  starting from the model's own weights ({} initializers)\n", m.weights.size());
  out.flush();

  Progress progress(o.progress);
  const int64_t batch = o.model.batch, steps = (d.train.n + batch - 1) / batch;
  const auto runStart = Clock::now();
  const int64_t epochsThisRun = o.epochs - firstEpoch + 1;
  std::string plotNote;
  std::vector<float> x;
  std::vector<int32_t> y;
  for (int64_t epoch = firstEpoch; epoch <= o.epochs; ++epoch) {
    const auto epochStart = Clock::now();
    std::vector<int64_t> order = epochOrder(o.seed, epoch, d.train.n);
    double lossSum = 0;
    int64_t correct = 0, seen = 0, firstStep = 0;
    if (epoch == resumeAt.epoch) // the order is a function of (seed, epoch): skip what is done
      firstStep = resumeAt.stepsDone, lossSum = resumeAt.lossSum, correct = resumeAt.correct,
      seen = resumeAt.seen;
    for (int64_t s = firstStep; s < steps; ++s) {
      int64_t n = std::min(batch, d.train.n - s * batch);
      toFloats(d.train, d.pixels, order.data() + s * batch, n, x, y);
      interp::StepResult sr = t->step(x.data(), y.data(), n, o.hyper, globalStep);
      if (!std::isfinite(sr.loss)) {
        progress.clear();
        throw Error(fmt::format(
            "training stopped: the loss is {} at epoch {}, step {} of {} (global step {}); "
            "the learning rate ({:g}) is probably too large",
            std::isnan(sr.loss) ? "NaN"
            : sr.loss > 0       ? "+Inf"
                                : "-Inf",
            epoch, s + 1, steps, globalStep + 1, o.hyper.lr));
      }
      ++globalStep;
      if (testSignal.afterStep == globalStep)
        std::raise(testSignal.sig);
      lossSum += sr.loss * (double)n;
      correct += sr.correct;
      seen += n;
      double el = since(epochStart), ips = (double)seen / std::max(el, 1e-9);
      double doneFrac =
          ((double)(epoch - firstEpoch) + (double)(s + 1) / (double)steps) / (double)epochsThisRun;
      double runEl = since(runStart);
      double eta = epoch == firstEpoch
                       ? (double)(steps - s - 1) * el / (double)(s + 1) +
                             (double)(o.epochs - epoch) * el * (double)steps / (double)(s + 1)
                       : runEl / doneFrac - runEl;
      progress.update(epoch, o.epochs, s + 1, steps, lossSum / (double)seen,
                      (double)correct / (double)seen, ips, eta);
      if (g_signal) {
        progress.clear();
        Partial here{epoch, s + 1, correct, seen, lossSum};
        writeCheckpoint(r.checkpointPath, t->state(), epoch - 1, globalStep, r.history, o,
                        d.train.n, &here);
        out << fmt::format("interrupted ({}) after epoch {}, step {} of {} (global step {}); "
                           "wrote {}\nto resume, run the same command with --resume {}\n",
                           g_signal == SIGINT ? "SIGINT" : "SIGTERM", epoch, s + 1, steps,
                           globalStep, r.checkpointPath, r.checkpointPath);
        out.flush();
        r.interruptedBy = g_signal;
        return r;
      }
    }
    const double trainSeconds = since(epochStart);
    progress.status(
        fmt::format("epoch {}/{}: evaluating {} test images", epoch, o.epochs, d.test.n));
    Eval ev = evaluate(*t, d, batch, classes);
    EpochRecord rec{
        epoch,    lossSum / (double)seen, 1.0 - (double)correct / (double)seen,       ev.loss,
        ev.error, since(epochStart),      (double)seen / std::max(trainSeconds, 1e-9)};
    r.history.push_back(rec);
    progress.clear();
    out << fmt::format(
        "epoch {:>3}/{}  train loss {:.4f} error {:6.2f}%  test loss {:.4f} error {:6.2f}%  "
        "{:.1f} s  {:.0f} img/s  {} images in {} steps\n",
        epoch, o.epochs, rec.trainLoss, 100 * rec.trainError, rec.testLoss, 100 * rec.testError,
        rec.seconds, rec.imagesPerSecond, seen, steps);
    out.flush();
    writeLog(r.logPath, r.history);
    if (o.plot)
      plotNote = writePlot(o.outDir,
                           fmt::format("{} on {}", fs::path(o.model.path).stem().string(), o.data),
                           r.history.size());
    writeCheckpoint(r.checkpointPath, t->state(), epoch, globalStep, r.history, o, d.train.n);
  }

  r.state = t->state();
  std::map<std::string, io::Array> w; // what @infer needs: weights, statistics, preprocessing
  for (const auto &n : m.infer->nodes())
    if (n->op == OpKind::Param) {
      const std::vector<float> &v = r.state.at(n->name);
      w[n->name] = io::Array::fromFloats(v, n->type.shape);
    }
  io::writeNpz(r.weightsPath, w);

  if (!r.history.empty())
    out << fmt::format("final test error: {:.2f}% (epoch {}, {} test images)\n",
                       100 * r.history.back().testError, r.history.back().epoch, d.test.n);
  out << fmt::format("wrote {} (trained weights with the input mean %{}), {}, {}{}\n",
                     r.weightsPath, meanName, r.checkpointPath, r.logPath,
                     plotNote.empty() && o.plot ? ", " + r.plotPath : "");
  if (!plotNote.empty())
    out << "note: " << plotNote << "\n";
  return r;
}

} // namespace cnnc::tools
