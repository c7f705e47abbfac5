// coldstart: how long a gRPC server takes from exec to serving. For each run
// it picks a free loopback port, execs the command with "{port}" replaced by
// it, and measures exec → the port accepts a TCP connection ("listening") and
// exec → the first grpc.health.v1 Check answered SERVING ("serving"). Prints
// the median and p90 of each over the runs, as a table and JSON.
//
//   coldstart --runs 20 -- build/bin/meshd --ephemeral --grpc-address 127.0.0.1:{port}

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace {

using Clock = std::chrono::steady_clock;

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

bool Accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t i = static_cast<size_t>(p / 100.0 * (values.size() - 1) + 0.5);
  return values[std::min(i, values.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 20;
  std::string json;
  int first = 1;
  for (; first < argc; ++first) {
    std::string arg = argv[first];
    if (arg == "--runs" && first + 1 < argc) {
      runs = std::stoi(argv[++first]);
    } else if (arg == "--json" && first + 1 < argc) {
      json = argv[++first];
    } else if (arg == "--") {
      ++first;
      break;
    } else {
      std::fprintf(stderr, "usage: coldstart [--runs N] [--json FILE] -- CMD ARGS ({port})\n");
      return 2;
    }
  }
  if (first >= argc) {
    std::fprintf(stderr, "coldstart: no command\n");
    return 2;
  }
  std::vector<double> listening;
  std::vector<double> serving;
  for (int run = 0; run < runs; ++run) {
    const int port = FreePort();
    std::vector<std::string> args;
    for (int i = first; i < argc; ++i) {
      args.push_back(absl::StrReplaceAll(argv[i], {{"{port}", std::to_string(port)}}));
    }
    std::vector<char*> exec_args;
    for (std::string& a : args) exec_args.push_back(a.data());
    exec_args.push_back(nullptr);
    const Clock::time_point start = Clock::now();
    pid_t pid = fork();
    if (pid == 0) {
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      execv(exec_args[0], exec_args.data());
      _exit(127);
    }
    const Clock::time_point give_up = start + std::chrono::seconds(10);
    while (!Accepts(port) && Clock::now() < give_up) {
      usleep(50);
    }
    const Clock::time_point listen_at = Clock::now();
    auto stub = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
    bool ok = false;
    while (!ok && Clock::now() < give_up) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
      grpc::health::v1::HealthCheckRequest request;
      grpc::health::v1::HealthCheckResponse response;
      ok = stub->Check(&context, request, &response).ok() &&
           response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
    }
    const Clock::time_point serving_at = Clock::now();
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    if (!ok) {
      std::fprintf(stderr, "coldstart: %s did not serve on port %d within 10s\n", exec_args[0],
                   port);
      return 1;
    }
    listening.push_back(Ms(listen_at - start));
    serving.push_back(Ms(serving_at - start));
  }
  const std::string result = absl::StrFormat(
      "{\"command\":\"%s\",\"runs\":%d,\"listening_ms\":{\"median\":%.2f,\"p90\":%.2f},"
      "\"serving_ms\":{\"median\":%.2f,\"p90\":%.2f}}",
      argv[first], runs, Percentile(listening, 50), Percentile(listening, 90),
      Percentile(serving, 50), Percentile(serving, 90));
  std::printf(
      "%-40s exec→listening median %.2f ms (p90 %.2f), exec→serving median %.2f ms "
      "(p90 %.2f), %d runs\n",
      argv[first], Percentile(listening, 50), Percentile(listening, 90), Percentile(serving, 50),
      Percentile(serving, 90), runs);
  if (!json.empty()) std::ofstream(json) << result << "\n";
  return 0;
}
