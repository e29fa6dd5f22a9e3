// A scripted stand-in for the Kubernetes API server, for the kube_* unit tests: httplib::Server on
// 127.0.0.1 (a free port), answering lists from a handler and watches from a queue of scripts
// that stream chunks (split wherever the test likes), then close, cut the connection, or go quiet.
// Every request is recorded for assertions.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace weir::k8s::testing {

// A file under unit/testdata/kube/.
inline std::string ReadTestData(const std::string& name) {
  const std::filesystem::path path =
      std::filesystem::path(__FILE__).parent_path() / "testdata" / "kube" / name;
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  if (!in) throw std::runtime_error("missing test data " + path.string());
  return contents.str();
}

struct RecordedRequest {
  std::string path;
  std::map<std::string, std::string> params;
  std::string authorization;
  bool watch() const { return params.count("watch") && params.at("watch") == "true"; }
  std::string param(const std::string& key) const {
    auto it = params.find(key);
    return it == params.end() ? "" : it->second;
  }
};

struct Reply {
  int status = 200;
  std::string body;
};

struct WatchScript {
  enum class Ending {
    kClose,  // end the response properly (the server's timeoutSeconds ran out)
    kCut,    // drop the connection without ending the chunked body
    kHang,   // send nothing more until the server stops (a quiet watch)
  };
  std::vector<std::string> chunks;  // each written separately, `gap` apart
  Ending ending = Ending::kClose;
  std::chrono::milliseconds gap{15};
  int status = 200;  // not 200: reply with `error_body` instead of streaming
  std::string error_body;
};

class FakeApiServer {
 public:
  FakeApiServer() {
    // Quiet watches hold a worker each until the end of the test.
    server_.new_task_queue = [] { return new httplib::ThreadPool(32); };
    server_.Get(".*", [this](const httplib::Request& request, httplib::Response& response) {
      Serve(request, response);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeApiServer() {
    stopping_ = true;
    server_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Lists of `path` are answered by `handler` (paginate on request.param("continue")).
  void OnList(const std::string& path, std::function<Reply(const RecordedRequest&)> handler) {
    std::lock_guard<std::mutex> lock(mu_);
    lists_[path] = std::move(handler);
  }
  // The same reply to every list of `path`.
  void SetList(const std::string& path, Reply reply) {
    OnList(path, [reply](const RecordedRequest&) { return reply; });
  }
  // Watches of `path` take the scripts in order; once they run out, watches hang (quiet).
  void QueueWatch(const std::string& path, WatchScript script) {
    std::lock_guard<std::mutex> lock(mu_);
    watches_[path].push_back(std::move(script));
  }

  std::vector<RecordedRequest> Requests(const std::string& path, bool watch) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<RecordedRequest> matching;
    for (const RecordedRequest& request : requests_) {
      if (request.path == path && request.watch() == watch) matching.push_back(request);
    }
    return matching;
  }
  size_t CountRequests(const std::string& path, bool watch) const { return Requests(path, watch).size(); }

 private:
  void Serve(const httplib::Request& request, httplib::Response& response) {
    RecordedRequest recorded{request.path, {}, request.get_header_value("Authorization")};
    for (const auto& [key, value] : request.params) recorded.params[key] = value;
    std::function<Reply(const RecordedRequest&)> list;
    std::optional<WatchScript> script;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(recorded);
      if (recorded.watch()) {
        auto& queue = watches_[recorded.path];
        if (!queue.empty()) {
          script = std::move(queue.front());
          queue.pop_front();
        } else {
          script = WatchScript{.ending = WatchScript::Ending::kHang};
        }
      } else if (auto it = lists_.find(recorded.path); it != lists_.end()) {
        list = it->second;
      }
    }
    if (!recorded.watch()) {
      Reply reply =
          list ? list(recorded) : Reply{404, R"({"kind":"Status","code":404,"message":"not found"})"};
      response.status = reply.status;
      response.set_content(reply.body, "application/json");
      return;
    }
    if (script->status != 200) {
      response.status = script->status;
      response.set_content(script->error_body, "application/json");
      return;
    }
    response.set_chunked_content_provider(
        "application/json", [this, script = *script](size_t /*offset*/, httplib::DataSink& sink) {
          for (const std::string& chunk : script.chunks) {
            if (!sink.write(chunk.data(), chunk.size())) return false;
            std::this_thread::sleep_for(script.gap);
          }
          switch (script.ending) {
            case WatchScript::Ending::kClose: sink.done(); return true;
            case WatchScript::Ending::kCut: return false;
            case WatchScript::Ending::kHang:
              while (!stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(5));
              return false;
          }
          return false;
        });
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mu_;
  std::map<std::string, std::function<Reply(const RecordedRequest&)>> lists_;
  std::map<std::string, std::deque<WatchScript>> watches_;
  std::vector<RecordedRequest> requests_;
};

// Polls `condition` until true or `timeout`; for waiting on informer threads.
inline bool WaitFor(const std::function<bool()>& condition,
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace weir::k8s::testing
