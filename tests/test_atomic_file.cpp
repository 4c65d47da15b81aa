// nn::write_file_atomically: temporaries a killed writer left behind are cleaned up by the
// next write of the same file, and nothing else is touched.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>

#include "nn/atomic_file.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;

namespace {

// The pid of a process that has exited (and been reaped), so no process runs under it.
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

void write_text(const fs::path& path, const std::string& text) {
  nn::write_file_atomically(path, [&](const nn::ByteSink& write) { write(text.data(), text.size()); });
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("a write removes the temporaries killed writers left for the same file, and nothing else") {
  TempDir dir("atomic");
  const fs::path target = dir.path / "checkpoint.safetensors";
  const std::string dead = std::to_string(dead_pid());
  const fs::path stale = dir.path / ("checkpoint.safetensors.tmp-" + dead);
  const fs::path live = dir.path / "checkpoint.safetensors.tmp-1";  // pid 1 always runs
  const fs::path other_target = dir.path / ("model.safetensors.tmp-" + dead);
  const fs::path not_ours = dir.path / "checkpoint.safetensors.tmp-12x";
  const fs::path user_file = dir.path / ("notes.tmp-" + dead);
  for (const fs::path& p : {stale, live, other_target, not_ours, user_file}) std::ofstream(p) << "half";
  const fs::path stale_folder = dir.path / ("checkpoint.safetensors.tmp-" + std::to_string(dead_pid()));
  fs::create_directory(stale_folder);

  write_text(target, "new content");

  CHECK(read_text(target) == "new content");
  CHECK_FALSE(fs::exists(stale));
  CHECK(fs::exists(live));
  CHECK(fs::exists(other_target));  // another file's temporary: its own next write cleans it
  CHECK(fs::exists(not_ours));
  CHECK(fs::exists(user_file));
  CHECK(fs::is_directory(stale_folder));  // only regular files are ours
  CHECK_FALSE(fs::exists(dir.path / ("checkpoint.safetensors.tmp-" + std::to_string(::getpid()))));

  write_text(dir.path / "model.safetensors", "model");
  CHECK_FALSE(fs::exists(other_target));
}

TEST_CASE("a write into the current folder (a bare file name) also cleans up") {
  TempDir dir("atomic");
  const fs::path saved = fs::current_path();
  fs::current_path(dir.path);
  const std::string stale = "metrics.csv.tmp-" + std::to_string(dead_pid());
  std::ofstream(stale) << "half";
  write_text("metrics.csv", "epoch\n");
  CHECK_FALSE(fs::exists(stale));
  CHECK(read_text("metrics.csv") == "epoch\n");
  fs::current_path(saved);
}
