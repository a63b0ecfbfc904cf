#include "runtime/autocast.h"

#include <ATen/autocast_mode.h>

#include "common/errors.h"

namespace medtune::runtime {

bool autocastAvailable(c10::DeviceType device) { return at::autocast::is_autocast_available(device); }

AutocastScope::AutocastScope(c10::DeviceType device, std::optional<at::ScalarType> dtype) {
  if (!dtype) return;
  if (!autocastAvailable(device))
    throw ArgumentError(std::string("mixed precision: autocast is not available for device type ") + c10::DeviceTypeName(device));
  device_ = device;
  prevEnabled_ = at::autocast::is_autocast_enabled(device);
  prevDtype_ = at::autocast::get_autocast_dtype(device);
  prevCache_ = at::autocast::is_autocast_cache_enabled();
  // torch.autocast.__enter__: dtype, enabled, nesting, cache.
  at::autocast::set_autocast_dtype(device, *dtype);
  at::autocast::set_autocast_enabled(device, true);
  at::autocast::increment_nesting();
  at::autocast::set_autocast_cache_enabled(true);
  active_ = true;
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // torch.autocast.__exit__: the outermost scope drops the cached casts.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_, prevEnabled_);
  at::autocast::set_autocast_dtype(device_, prevDtype_);
  at::autocast::set_autocast_cache_enabled(prevCache_);
}

}  // namespace medtune::runtime
