// Service and backend ids: the smallest free id, starting at 1 (0 means "none" in the datapath),
// so ids stay dense and an id freed by a deletion is reused by the next addition.
#pragma once

#include <cstdint>
#include <set>

namespace weir::sync {

class IdAllocator {
 public:
  uint32_t Allocate() {
    if (!free_below_next_.empty()) {
      const uint32_t id = *free_below_next_.begin();
      free_below_next_.erase(free_below_next_.begin());
      return id;
    }
    return next_++;
  }

  // For ids found in the maps on adoption. 0 is never an id and is ignored.
  void MarkUsed(uint32_t id) {
    if (id == 0) return;
    if (id < next_) {
      free_below_next_.erase(id);
      return;
    }
    for (uint32_t free = next_; free < id; ++free) free_below_next_.insert(free);
    next_ = id + 1;
  }

  void Release(uint32_t id) {
    if (id == 0 || id >= next_) return;
    free_below_next_.insert(id);
    // Keep the free set small: ids at the top go back to the untouched range.
    while (next_ > 1 && free_below_next_.erase(next_ - 1) == 1) --next_;
  }

  bool IsUsed(uint32_t id) const { return id != 0 && id < next_ && !free_below_next_.contains(id); }

  void Clear() {
    next_ = 1;
    free_below_next_.clear();
  }

 private:
  uint32_t next_ = 1;  // this id and every one above it are free
  std::set<uint32_t> free_below_next_;
};

}  // namespace weir::sync
