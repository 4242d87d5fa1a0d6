#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace hosting::controlplane {

// GET `url` (libcurl, no signals): the body with the HTTP status in `status`. UNAVAILABLE naming
// `what` when the server cannot be reached or does not answer within `timeout`.
absl::StatusOr<std::string> HttpGet(const std::string& url, absl::Duration timeout,
                                    const std::string& what, long* status);

// `text` escaped for a URL's query string.
std::string UrlEscape(const std::string& text);

}  // namespace hosting::controlplane
