// Retry pacing for the list/watch loops: exponential backoff with jitter, and the interruptible
// sleep it is spent in (injectable, so tests check the delays without waiting them out).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

namespace weir::k8s {

// Delay n (from 0) is drawn from [d/2, d] with d = min(cap, base * 2^n): doubling spreads a
// failing API server's load out, the jitter keeps the agents of every node from retrying in step,
// and the cap bounds how long a recovered server goes unnoticed.
class Backoff {
 public:
  struct Options {
    std::chrono::milliseconds base{200};
    std::chrono::milliseconds cap{30'000};
  };
  // `random` yields uniform values in [0, 1); empty: a PRNG seeded from the clock.
  explicit Backoff(Options options, std::function<double()> random = nullptr);

  std::chrono::milliseconds Next();
  // After a success: the next failure starts over from `base`.
  void Reset() { failures_ = 0; }
  int failures() const { return failures_; }

 private:
  Options options_;
  std::function<double()> random_;
  int failures_ = 0;
};

// A uniform [0, 1) source seeded from the clock (not for cryptography).
std::function<double()> DefaultRandom();

class Sleeper {
 public:
  virtual ~Sleeper() = default;
  // Waits `duration` unless interrupted; false when interrupted (now or earlier): the caller is
  // shutting down and must not start more work.
  virtual bool SleepFor(std::chrono::milliseconds duration) = 0;
  // Wakes the current sleep and makes every later one return false at once.
  virtual void Interrupt() = 0;
};

class RealSleeper : public Sleeper {
 public:
  bool SleepFor(std::chrono::milliseconds duration) override;
  void Interrupt() override;

 private:
  std::mutex mu_;
  std::condition_variable wake_;
  bool interrupted_ = false;
};

}  // namespace weir::k8s
