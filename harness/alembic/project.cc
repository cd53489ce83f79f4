#include "harness/alembic/project.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "alembic/driver_py.h"
#include "harness/error.h"
#include "harness/sys/untrusted_text.h"

namespace fs = std::filesystem;

namespace harness::alembic {

namespace {

// How long the driver may take to say it is ready (importing SQLAlchemy and
// Alembic takes about half a second), and a request that is not a run.
constexpr auto kReadyTimeout = std::chrono::seconds(60);

// RFC 3986's unreserved characters stay, anything else is %XX: what
// SQLAlchemy's URL parser (and its query parser) turns back into the text.
std::string Percent(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

bool Executable(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && access(p.c_str(), X_OK) == 0;
}

// `name` as the shell finds it on PATH.
std::optional<fs::path> OnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return std::nullopt;
  std::istringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':'))
    if (!dir.empty() && Executable(fs::path(dir) / name)) return fs::path(dir) / name;
  return std::nullopt;
}

// The interpreter a script's `#!` line names: the Python that runs the
// `alembic` command its users type.
std::optional<fs::path> Shebang(const fs::path& script) {
  std::ifstream in(script);
  std::string line;
  if (!std::getline(in, line) || line.rfind("#!", 0) != 0) return std::nullopt;
  std::istringstream words(line.substr(2));
  std::string first, second;
  words >> first >> second;
  if (fs::path(first).filename() == "env" && !second.empty()) return OnPath(second);
  if (first.find("python") == std::string::npos) return std::nullopt;
  return fs::path(first);
}

std::string FirstLine(const std::string& text) {
  auto nl = text.find('\n');
  return nl == std::string::npos ? text : text.substr(0, nl);
}

std::string DebianPackage(const std::string& module) {
  return module == "asyncpg" ? "python3-asyncpg" : module == "psycopg2" ? "python3-psycopg2" : "python3-" + module;
}

}  // namespace

Driver::Driver(const fs::path& python, const fs::path& ini)
    : spawned_(std::chrono::steady_clock::now()), child_({python.string(), "-c", kDriverPy}, [&] {
        sys::ProcessOptions o;
        o.working_dir = ini.parent_path().string();
        o.env = {{"MIGRATION_HARNESS_ALEMBIC_INI", ini.string()}, {"PYTHONDONTWRITEBYTECODE", "1"}};
        return o;
      }()) {
  const auto started = std::chrono::steady_clock::now();
  auto line = child_.ReadLine(
      [&] {
        if (std::chrono::steady_clock::now() - started > kReadyTimeout)
          throw DatabaseError(fmt::format("{} did not start within {} s", python.string(), kReadyTimeout.count()));
      },
      std::chrono::milliseconds(100));
  if (!line) {
    not_ready_ = "it exited: " + FirstLine(child_.TakeErr());
    return;
  }
  const auto ready = nlohmann::json::parse(*line, nullptr, false);
  if (!ready.is_object() || ready.value("event", "") != "ready") {
    not_ready_ = "it did not start the driver: " + sys::ShowUntrusted(*line, 200);
    return;
  }
  ready_ = ready.value("ok", false);
  if (!ready_) {
    not_ready_ = ready.value("message", std::string("no alembic"));
    return;
  }
  // From the fork to its word that alembic is imported: the interpreter's
  // own start-up and the imports.
  startup_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - spawned_).count();
  versions_ = ready;
}

nlohmann::json Driver::Request(const nlohmann::json& request, const std::function<void(int)>& on_session,
                               const std::function<void()>& tick) {
  if (!child_.Send(request.dump())) throw DatabaseError("the Alembic driver is gone: " + FirstLine(child_.TakeErr()));
  for (;;) {
    auto line = child_.ReadLine(tick, std::chrono::milliseconds(5));
    if (!line)
      throw DatabaseError("the Alembic driver (the project's Python) exited: " + FirstLine(child_.TakeErr()),
                          "run the same command with `alembic` in the project's folder to see why");
    auto answer = nlohmann::json::parse(*line, nullptr, false);
    if (!answer.is_object()) continue;  // not ours: a revision printing to our channel
    const std::string event = answer.value("event", "");
    if (event == "session") {
      if (on_session && answer["pid"].is_number_integer()) on_session(answer["pid"].get<int>());
      continue;
    }
    if (event == "done") return answer;
  }
}

std::unique_ptr<Project> Project::Open(const ProjectOptions& options) {
  auto p = std::unique_ptr<Project>(new Project());
  p->options_ = options;
  std::error_code ec;
  fs::path ini = options.path;
  if (fs::is_directory(ini, ec)) ini /= "alembic.ini";
  if (!fs::is_regular_file(ini, ec))
    throw UsageError(fmt::format("no Alembic project at {}: {} is not a file", options.path, ini.string()),
                     "pass --alembic the project's alembic.ini, or the folder that holds it");
  p->ini_ = fs::canonical(ini, ec);
  if (ec) p->ini_ = fs::absolute(ini);
  if (!options.url_env.empty() &&
      (options.url_env.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
           std::string::npos ||
       std::isdigit(static_cast<unsigned char>(options.url_env[0]))))
    throw UsageError("--alembic-url-env " + options.url_env + " is not an environment variable's name");

  // The Python: the one given, else the one that runs the `alembic`
  // command, else python3 on PATH, else Debian's; the first that imports alembic.
  std::vector<fs::path> candidates;
  if (!options.python.empty()) {
    if (!Executable(options.python))
      throw UsageError("--alembic-python " + options.python + " is not an executable file");
    candidates.push_back(options.python);
  } else {
    if (auto command = OnPath("alembic"))
      if (auto interpreter = Shebang(*command)) candidates.push_back(*interpreter);
    if (auto python3 = OnPath("python3")) candidates.push_back(*python3);
    candidates.push_back("/usr/bin/python3");
  }
  std::vector<std::string> tried;
  std::set<std::string> seen;
  for (const auto& python : candidates) {
    if (!seen.insert(python.string()).second || !Executable(python)) continue;
    auto driver = std::make_unique<Driver>(python, p->ini_);
    if (driver->ready()) {
      p->python_ = python;
      p->driver_ = std::move(driver);
      break;
    }
    tried.push_back(python.string() + ": " + driver->not_ready());
  }
  if (!p->driver_) {
    std::string list;
    for (const auto& t : tried) list += (list.empty() ? "" : "; ") + t;
    throw UsageError("no Python here can import alembic (" + (list.empty() ? std::string("none found") : list) + ")",
                     options.python.empty()
                         ? "install Debian's alembic and python3-alembic (apt-get install alembic python3-alembic), "
                           "or pass --alembic-python PATH of the project's virtualenv"
                         : "install alembic into that Python, or pass another --alembic-python");
  }
  const auto none = [](int) {};
  const auto idle = [] {};
  auto inspected = p->driver_->Request({{"cmd", "inspect"}}, none, idle);
  if (!inspected.value("ok", false))
    throw UsageError(fmt::format("the Alembic project {} cannot be read: {}: {}", p->ini_.string(),
                                 inspected.value("type", std::string("error")),
                                 sys::ShowUntrusted(inspected.value("message", std::string()), 300)),
                     "fix the project (`alembic history` in its folder shows the same error), then try again");
  for (const auto& r : inspected["revisions"]) {
    // Ids reach every report and alembic_version (varchar(32)): printable,
    // no white space. The message and the file are shown made safe.
    const std::string id = r["id"];
    if (id.empty() || id.size() > 32 ||
        std::any_of(id.begin(), id.end(), [](char c) { return c <= ' ' || c > '~'; }))
      throw UsageError(fmt::format("the Alembic project {} has a revision id that migration-harness cannot name "
                                   "safely: '{}' ({}): 1 to 32 printable characters, no white space",
                                   p->ini_.string(), sys::ShowUntrusted(id, 40),
                                   sys::ShowUntrusted(r.value("file", std::string()), 200)));
    p->revisions_.push_back({id, r["parents"].get<std::vector<std::string>>(),
                             sys::ShowUntrusted(r.value("message", std::string()), 120),
                             sys::ShowUntrusted(r.value("file", std::string()), 200), r.value("downgrade", "")});
  }
  p->heads_ = inspected["heads"].get<std::vector<std::string>>();
  if (p->revisions_.empty())
    throw UsageError("the Alembic project " + p->ini_.string() + " has no revisions",
                     "nothing to rehearse: write one with `alembic revision`");
  // The driver: the one asked for, else the one the ini's URL names, else psycopg2.
  p->driver_module_ = options.driver;
  if (p->driver_module_.empty()) {
    const std::string url = inspected.value("url", "");
    const auto plus = url.find('+'), colon = url.find("://");
    p->driver_module_ = plus != std::string::npos && colon != std::string::npos && plus < colon
                            ? url.substr(plus + 1, colon - plus - 1)
                            : "psycopg2";
    if (p->driver_module_ != "asyncpg" && p->driver_module_ != "psycopg2")
      throw UsageError(fmt::format("{}'s sqlalchemy.url names the driver {}; migration-harness runs "
                                   "projects with asyncpg or psycopg2 (SQLAlchemy 1.4 has no psycopg 3 dialect)",
                                   p->ini_.string(), p->driver_module_),
                       "pass --alembic-driver asyncpg or --alembic-driver psycopg2");
  }
  auto imported = p->driver_->Request({{"cmd", "import"}, {"module", p->driver_module_}}, none, idle);
  if (!imported.value("ok", false))
    throw UsageError(fmt::format("{} cannot import {}, the database driver the project's env.py will use: {}",
                                 p->python_.string(), p->driver_module_,
                                 sys::ShowUntrusted(imported.value("message", std::string()), 200)),
                     fmt::format("install it (Debian: apt-get install {}), or pass --alembic-python of a virtualenv "
                                 "that has it, or --alembic-driver for the other one",
                                 DebianPackage(p->driver_module_)));
  return p;
}

const Revision* Project::Find(const std::string& id) const {
  for (const auto& r : revisions_)
    if (r.id == id) return &r;
  return nullptr;
}

engine::RevisionGraph Project::PathTo(const std::string& target) const {
  std::string to = target;
  if (target == "head" || target == "heads") {
    if (heads_.size() != 1) {
      std::vector<std::string> sorted = heads_;
      std::sort(sorted.begin(), sorted.end());
      std::string names;
      for (const auto& h : sorted) names += (names.empty() ? "" : " and ") + h;
      throw UsageError(fmt::format("the Alembic project has {} heads ({}): `head` names none of them", heads_.size(),
                                   names),
                       "pass --target with the revision to rehearse (the path to it is rehearsed)");
    }
    to = heads_.front();
  } else if (!Find(target)) {
    std::vector<std::string> matches;  // Alembic takes a unique prefix of an id
    for (const auto& r : revisions_)
      if (r.id.rfind(target, 0) == 0) matches.push_back(r.id);
    if (matches.size() != 1) {
      std::string known;
      for (const auto& r : revisions_) known += (known.empty() ? "" : ", ") + r.id;
      throw UsageError(fmt::format("revision '{}' is {} in the Alembic project", target,
                                   matches.empty() ? "not" : "ambiguous"),
                       "known revisions: " + known + ", head");
    }
    to = matches.front();
  }
  // Its ancestors, parents before children; branches in the order Alembic lists them.
  std::set<std::string> needed;
  std::vector<std::string> stack = {to};
  while (!stack.empty()) {
    std::string id = stack.back();
    stack.pop_back();
    if (!needed.insert(id).second) continue;
    for (const auto& parent : Find(id)->parents) stack.push_back(parent);
  }
  std::vector<std::string> order;
  std::set<std::string> placed;
  while (order.size() < needed.size()) {
    bool progress = false;
    for (const auto& r : revisions_) {
      if (!needed.count(r.id) || placed.count(r.id)) continue;
      if (!std::all_of(r.parents.begin(), r.parents.end(), [&](const std::string& x) { return placed.count(x); }))
        continue;
      order.push_back(r.id);
      placed.insert(r.id);
      progress = true;
    }
    if (!progress) throw UsageError("the Alembic project's revisions form a cycle below " + to);
  }
  std::vector<engine::MigrationFile> files;
  for (size_t i = 0; i < order.size(); ++i) {
    const Revision& r = *Find(order[i]);
    engine::MigrationFile f;
    f.revision = r.id;
    f.path = ini_.parent_path() / r.file;
    f.message = r.message;
    f.parents = r.parents;
    if (i > 0) f.down_revision = order[i - 1];
    files.push_back(std::move(f));
  }
  return engine::RevisionGraph::Build(std::move(files));
}

std::string Project::SqlAlchemyUrl(const pg::Url& url) const {
  std::vector<std::pair<std::string, std::string>> query;
  const std::string host = url.host(), port = url.port();
  const bool socket = !host.empty() && host[0] == '/';
  std::string authority;
  if (!url.user().empty()) authority = Percent(url.user());
  if (!url.password().empty()) authority += ":" + Percent(url.password());
  if (!authority.empty()) authority += "@";
  if (socket) {
    query.emplace_back("host", host);
    query.emplace_back("port", port);
  } else {
    authority += (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
  }
  std::string path = url.dbname();
  const bool plain_name = !path.empty() && path.find_first_not_of(
                                               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") ==
                                               std::string::npos;
  if (!plain_name) {
    query.emplace_back(driver_module_ == "asyncpg" ? "database" : "dbname", path);
    path.clear();
  }
  for (const auto& [key, value] : url.Options()) {
    if (key == "host" || key == "port" || key == "user" || key == "password" || key == "dbname") continue;
    if (driver_module_ == "psycopg2") {
      query.emplace_back(key, value);  // libpq takes them as they are
    } else if (key == "sslmode") {
      query.emplace_back("ssl", value);
    } else if (key == "connect_timeout") {
      query.emplace_back("timeout", value);
    } else {
      throw UsageError(fmt::format("the URL sets {}, which the asyncpg driver cannot take", key),
                       "leave it out of the URL, or run the project with --alembic-driver psycopg2");
    }
  }
  std::string text = fmt::format("postgresql+{}://{}/{}", driver_module_, authority, path);
  for (size_t i = 0; i < query.size(); ++i)
    text += (i ? "&" : "?") + Percent(query[i].first) + "=" + Percent(query[i].second);
  return text;
}

std::string Project::Redact(const std::string& text, const pg::Url& url) {
  std::string out = pg::Redact(text, url);
  const std::string password = url.password();
  if (password.empty()) return out;
  for (const std::string& form : {password, Percent(password)}) {
    for (size_t at = out.find(form); !form.empty() && at != std::string::npos; at = out.find(form, at + 4))
      out.replace(at, form.size(), "****");
  }
  return out;
}

}  // namespace harness::alembic
