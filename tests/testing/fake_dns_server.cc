#include "testing/fake_dns_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"

namespace a2amesh::testing {
namespace {

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeSrv = 33;

void Put16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xff));
}

void Put32(std::string* out, uint32_t v) {
  Put16(out, static_cast<uint16_t>(v >> 16));
  Put16(out, static_cast<uint16_t>(v & 0xffff));
}

void PutName(std::string* out, const std::string& name) {
  for (absl::string_view label : absl::StrSplit(name, '.', absl::SkipEmpty())) {
    out->push_back(static_cast<char>(label.size()));
    out->append(label.data(), label.size());
  }
  out->push_back(0);
}

uint16_t Get16(const std::string& in, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(in[at]) << 8) |
                               static_cast<uint8_t>(in[at + 1]));
}

}  // namespace

FakeDnsServer::FakeDnsServer() {
  fd_ = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::abort();
  }
  socklen_t len = sizeof(addr);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Loop(); });
}

FakeDnsServer::~FakeDnsServer() {
  stop_ = true;
  thread_.join();
  close(fd_);
}

void FakeDnsServer::SetA(const std::string& name, std::vector<std::string> ipv4) {
  absl::MutexLock lock(&mu_);
  a_[absl::AsciiStrToLower(name)] = std::move(ipv4);
}

void FakeDnsServer::SetSrv(const std::string& name, std::vector<Srv> records) {
  absl::MutexLock lock(&mu_);
  srv_[absl::AsciiStrToLower(name)] = std::move(records);
}

void FakeDnsServer::Remove(const std::string& name) {
  absl::MutexLock lock(&mu_);
  a_.erase(absl::AsciiStrToLower(name));
  srv_.erase(absl::AsciiStrToLower(name));
}

void FakeDnsServer::Loop() {
  char buffer[1500];
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) {
      continue;
    }
    sockaddr_in from{};
    socklen_t from_len = sizeof(from);
    ssize_t n =
        recvfrom(fd_, buffer, sizeof(buffer), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 12) {
      continue;
    }
    ++queries_;
    std::string reply = Answer(std::string(buffer, static_cast<size_t>(n)));
    if (!reply.empty()) {
      sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len);
    }
  }
}

std::string FakeDnsServer::Answer(const std::string& query) {
  // The question: labels, type, class.
  std::string name;
  size_t at = 12;
  while (at < query.size() && query[at] != 0) {
    size_t length = static_cast<uint8_t>(query[at]);
    if (at + 1 + length > query.size()) return "";
    if (!name.empty()) name.push_back('.');
    name.append(query, at + 1, length);
    at += 1 + length;
  }
  if (at + 5 > query.size()) return "";
  const size_t question_end = at + 5;
  const uint16_t type = Get16(query, at + 1);
  name = absl::AsciiStrToLower(name);

  std::string answers;
  uint16_t count = 0;
  bool known;
  {
    absl::MutexLock lock(&mu_);
    known = a_.count(name) > 0 || srv_.count(name) > 0;
    if (type == kTypeA && a_.count(name) > 0) {
      for (const std::string& ip : a_[name]) {
        PutName(&answers, name);
        Put16(&answers, kTypeA);
        Put16(&answers, 1);
        Put32(&answers, 1);  // TTL
        Put16(&answers, 4);
        in_addr addr{};
        inet_pton(AF_INET, ip.c_str(), &addr);
        answers.append(reinterpret_cast<const char*>(&addr), 4);
        ++count;
      }
    }
    if (type == kTypeSrv && srv_.count(name) > 0) {
      for (const Srv& record : srv_[name]) {
        std::string rdata;
        Put16(&rdata, 0);  // priority
        Put16(&rdata, 0);  // weight
        Put16(&rdata, static_cast<uint16_t>(record.port));
        PutName(&rdata, record.target);
        PutName(&answers, name);
        Put16(&answers, kTypeSrv);
        Put16(&answers, 1);
        Put32(&answers, 1);
        Put16(&answers, static_cast<uint16_t>(rdata.size()));
        answers += rdata;
        ++count;
      }
    }
  }
  std::string reply;
  reply.append(query, 0, 2);  // id
  uint16_t flags = 0x8400 | (Get16(query, 2) & 0x0100) | 0x0080 | (known ? 0 : 3);
  Put16(&reply, flags);
  Put16(&reply, 1);      // questions
  Put16(&reply, count);  // answers
  Put16(&reply, 0);
  Put16(&reply, 0);
  reply.append(query, 12, question_end - 12);
  reply += answers;
  return reply;
}

}  // namespace a2amesh::testing
