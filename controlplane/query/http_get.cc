#include "controlplane/query/http_get.h"

#include <curl/curl.h>

#include "absl/strings/str_cat.h"

namespace hosting::controlplane {

absl::StatusOr<std::string> HttpGet(const std::string& url, absl::Duration timeout,
                                    const std::string& what, long* status) {
  CURL* c = curl_easy_init();
  if (c == nullptr) return absl::InternalError("curl_easy_init failed");
  std::string body;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION,
                   +[](char* p, size_t size, size_t n, void* out) -> size_t {
                     static_cast<std::string*>(out)->append(p, size * n);
                     return size * n;
                   });
  const CURLcode rc = curl_easy_perform(c);
  *status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(what, ": ", curl_easy_strerror(rc)));
  }
  return body;
}

std::string UrlEscape(const std::string& text) {
  CURL* c = curl_easy_init();
  if (c == nullptr) return text;
  char* escaped = curl_easy_escape(c, text.c_str(), static_cast<int>(text.size()));
  std::string out = escaped == nullptr ? text : escaped;
  curl_free(escaped);
  curl_easy_cleanup(c);
  return out;
}

}  // namespace hosting::controlplane
