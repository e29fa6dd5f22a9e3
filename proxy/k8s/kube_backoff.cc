#include "proxy/k8s/kube_backoff.h"

#include <algorithm>
#include <memory>
#include <random>

namespace weir::k8s {

Backoff::Backoff(Options options, std::function<double()> random)
    : options_(options), random_(random ? std::move(random) : DefaultRandom()) {}

std::chrono::milliseconds Backoff::Next() {
  // Doubling stops at the cap; the shift is bounded so it cannot overflow.
  const int doublings = std::min(failures_, 30);
  const int64_t ceiling = std::min<int64_t>(options_.cap.count(), options_.base.count() << doublings);
  ++failures_;
  const double fraction = std::clamp(random_(), 0.0, 1.0);
  return std::chrono::milliseconds(
      ceiling / 2 + static_cast<int64_t>(fraction * static_cast<double>(ceiling - ceiling / 2)));
}

std::function<double()> DefaultRandom() {
  auto engine = std::make_shared<std::mt19937_64>(
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
      std::random_device{}());
  return [engine] { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
}

bool RealSleeper::SleepFor(std::chrono::milliseconds duration) {
  std::unique_lock<std::mutex> lock(mu_);
  return !wake_.wait_for(lock, duration, [this] { return interrupted_; });
}

void RealSleeper::Interrupt() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    interrupted_ = true;
  }
  wake_.notify_all();
}

}  // namespace weir::k8s
