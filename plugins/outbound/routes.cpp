// Route matching and the retry schedule.
#include "outbound_settings.hpp"

#include <algorithm>

namespace tern::outbound {

bool Route::matches(const std::string& domain) const {
  return std::any_of(domains.begin(), domains.end(),
                     [&](const std::string& candidate) { return candidate == "*" || candidate == domain; });
}

const Route& Settings::route_for(const std::string& domain) const {
  for (const Route& route : routes) {
    if (route.matches(domain)) return route;
  }
  return by_mx;
}

const Route* Settings::route_named(const std::string& id) const {
  if (id == "mx") return &by_mx;
  for (const Route& route : routes) {
    if (route.id == id) return &route;
  }
  return nullptr;
}

std::chrono::seconds Settings::retry_delay(std::uint32_t attempts) const {
  const std::size_t index = std::min<std::size_t>(attempts == 0 ? 0 : attempts - 1, retry_after.size() - 1);
  return retry_after[index];
}

}  // namespace tern::outbound
