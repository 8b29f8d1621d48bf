// relay/metrics/registry.cpp — see registry.hpp.
#include "relay/metrics/registry.hpp"

#include <charconv>
#include <cmath>

namespace danerelay::relay::metrics {

namespace {

std::string_view type_name(Type t) {
  switch (t) {
    case Type::counter: return "counter";
    case Type::gauge: return "gauge";
    case Type::histogram: return "histogram";
  }
  return "untyped";
}

// {a="x",b="y"} with an optional extra pair (le) at the end; "" when there are no labels.
std::string label_set(const std::vector<std::string>& names, const Labels& values, std::string_view extra_name = {},
                      std::string_view extra_value = {}) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i) {
    s += s.empty() ? "{" : ",";
    s += names[i] + "=\"" + escape_label_value(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    s += s.empty() ? "{" : ",";
    s += std::string(extra_name) + "=\"" + std::string(extra_value) + "\"";
  }
  if (!s.empty()) s += "}";
  return s;
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

Family::Family(std::mutex& mutex, std::string name, std::string help, Type type, std::vector<std::string> label_names,
               std::vector<double> bounds)
    : mutex_(mutex), name_(std::move(name)), help_(std::move(help)), type_(type), label_names_(std::move(label_names)),
      bounds_(std::move(bounds)) {}

Family::Series* Family::series(const Labels& labels) {
  if (labels.size() != label_names_.size()) return nullptr;
  auto it = series_.find(labels);
  if (it == series_.end()) {
    Series s;
    if (type_ == Type::histogram) s.buckets.assign(bounds_.size() + 1, 0);
    it = series_.emplace(labels, std::move(s)).first;
  }
  return &it->second;
}

void Family::add(const Labels& labels, double v) {
  std::lock_guard lock(mutex_);
  if (type_ == Type::histogram || (type_ == Type::counter && !(v >= 0))) return;
  if (Series* s = series(labels)) s->value += v;
}

void Family::set(const Labels& labels, double v) {
  std::lock_guard lock(mutex_);
  if (type_ != Type::gauge) return;
  if (Series* s = series(labels)) s->value = v;
}

void Family::observe(const Labels& labels, double v) {
  std::lock_guard lock(mutex_);
  if (type_ != Type::histogram || std::isnan(v)) return;
  Series* s = series(labels);
  if (s == nullptr) return;
  std::size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;  // le: the first bound >= v
  ++s->buckets[i];
  s->sum += v;
  ++s->count;
}

void Family::touch(const Labels& labels) {
  std::lock_guard lock(mutex_);
  (void)series(labels);
}

double Family::value(const Labels& labels) const {
  std::lock_guard lock(mutex_);
  const auto it = series_.find(labels);
  if (it == series_.end()) return 0;
  return type_ == Type::histogram ? static_cast<double>(it->second.count) : it->second.value;
}

void Family::render(std::string& out) const {
  out += "# HELP " + name_ + " " + escape_help(help_) + "\n";
  out += "# TYPE " + name_ + " " + std::string(type_name(type_)) + "\n";
  for (const auto& [labels, s] : series_) {
    if (type_ != Type::histogram) {
      out += name_ + label_set(label_names_, labels) + " " + format_value(s.value) + "\n";
      continue;
    }
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
      cumulative += s.buckets[i];
      const std::string le = i < bounds_.size() ? format_value(bounds_[i]) : "+Inf";
      out += name_ + "_bucket" + label_set(label_names_, labels, "le", le) + " " + std::to_string(cumulative) + "\n";
    }
    out += name_ + "_sum" + label_set(label_names_, labels) + " " + format_value(s.sum) + "\n";
    out += name_ + "_count" + label_set(label_names_, labels) + " " + std::to_string(s.count) + "\n";
  }
}

Family& Registry::add(std::string name, std::string help, Type type, std::vector<std::string> label_names,
                      std::vector<double> bounds) {
  std::lock_guard lock(mutex_);
  auto& slot = families_[name];
  if (!slot) {
    const bool unlabelled = label_names.empty();
    slot.reset(new Family(mutex_, std::move(name), std::move(help), type, std::move(label_names), std::move(bounds)));
    if (unlabelled) (void)slot->series({});
  }
  return *slot;
}

Family& Registry::counter(std::string name, std::string help, std::vector<std::string> label_names) {
  return add(std::move(name), std::move(help), Type::counter, std::move(label_names), {});
}

Family& Registry::gauge(std::string name, std::string help, std::vector<std::string> label_names) {
  return add(std::move(name), std::move(help), Type::gauge, std::move(label_names), {});
}

Family& Registry::histogram(std::string name, std::string help, std::vector<double> bounds, std::vector<std::string> label_names) {
  return add(std::move(name), std::move(help), Type::histogram, std::move(label_names), std::move(bounds));
}

std::string Registry::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, family] : families_) family->render(out);
  return out;
}

}  // namespace danerelay::relay::metrics
