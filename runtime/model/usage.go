package model

import (
	"strings"
	"sync"
)

// Usage counts the tokens of one or more turns. Input tokens are split
// three ways, the same for every provider, so that each is priced once:
// InputTokens are those neither read from nor written to the provider's
// prompt cache. The prompt's full size is PromptTokens.
type Usage struct {
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
	CacheReadTokens  int64 `json:"cache_read_tokens,omitempty"`
	CacheWriteTokens int64 `json:"cache_write_tokens,omitempty"`
}

// Add adds v to u.
func (u *Usage) Add(v Usage) {
	u.InputTokens += v.InputTokens
	u.OutputTokens += v.OutputTokens
	u.CacheReadTokens += v.CacheReadTokens
	u.CacheWriteTokens += v.CacheWriteTokens
}

// PromptTokens is the size of the prompt: input, cache reads and cache
// writes. After a turn, it and OutputTokens are how much of the model's
// context window the conversation fills.
func (u Usage) PromptTokens() int64 {
	return u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens
}

// Price is what a model's tokens cost, in US dollars per million tokens.
type Price struct {
	Input, Output, CacheRead, CacheWrite float64
}

// Cost is what u costs at p, in US dollars.
func (p Price) Cost(u Usage) float64 {
	return (float64(u.InputTokens)*p.Input +
		float64(u.OutputTokens)*p.Output +
		float64(u.CacheReadTokens)*p.CacheRead +
		float64(u.CacheWriteTokens)*p.CacheWrite) / 1e6
}

// prices are the list prices of known models (standard tier, prompts
// under any long-context surcharge; Anthropic's cache writes at the
// 5-minute rate) as published in late 2025. Static data: no init work.
var prices = [...]struct {
	name  string
	price Price
}{
	{"anthropic/claude-opus-4-5", Price{5, 25, 0.50, 6.25}},
	{"anthropic/claude-opus-4-1", Price{15, 75, 1.50, 18.75}},
	{"anthropic/claude-opus-4-0", Price{15, 75, 1.50, 18.75}},
	{"anthropic/claude-opus-4", Price{15, 75, 1.50, 18.75}},
	{"anthropic/claude-sonnet-4-5", Price{3, 15, 0.30, 3.75}},
	{"anthropic/claude-sonnet-4-0", Price{3, 15, 0.30, 3.75}},
	{"anthropic/claude-sonnet-4", Price{3, 15, 0.30, 3.75}},
	{"anthropic/claude-3-7-sonnet", Price{3, 15, 0.30, 3.75}},
	{"anthropic/claude-haiku-4-5", Price{1, 5, 0.10, 1.25}},
	{"anthropic/claude-3-5-haiku", Price{0.80, 4, 0.08, 1}},
	{"openai/gpt-5.1", Price{1.25, 10, 0.125, 0}},
	{"openai/gpt-5", Price{1.25, 10, 0.125, 0}},
	{"openai/gpt-5-mini", Price{0.25, 2, 0.025, 0}},
	{"openai/gpt-5-nano", Price{0.05, 0.40, 0.005, 0}},
	{"openai/gpt-4.1", Price{2, 8, 0.50, 0}},
	{"openai/gpt-4.1-mini", Price{0.40, 1.60, 0.10, 0}},
	{"openai/gpt-4.1-nano", Price{0.10, 0.40, 0.025, 0}},
	{"openai/gpt-4o", Price{2.50, 10, 1.25, 0}},
	{"openai/gpt-4o-mini", Price{0.15, 0.60, 0.075, 0}},
	{"openai/o3", Price{2, 8, 0.50, 0}},
	{"openai/o4-mini", Price{1.10, 4.40, 0.275, 0}},
}

var (
	overridesMu sync.RWMutex
	overrides   map[string]Price
)

// SetPrice sets the price of the model called name ("provider/model"),
// replacing the table's: for a model the table lacks, a negotiated price,
// or a price that changed. Call it from an agent's init.
func SetPrice(name string, p Price) {
	overridesMu.Lock()
	defer overridesMu.Unlock()
	if overrides == nil {
		overrides = map[string]Price{}
	}
	overrides[name] = p
}

// PriceOf returns the price of the model called name ("provider/model"):
// the one SetPrice set, else the table's. A dated snapshot or alias
// ("claude-sonnet-4-5-20250929", "gpt-4.1-2025-04-14",
// "claude-3-5-haiku-latest") has its model's price unless it has one of
// its own.
func PriceOf(name string) (Price, bool) {
	if p, ok := lookupPrice(name); ok {
		return p, true
	}
	if base := undated(name); base != name {
		return lookupPrice(base)
	}
	return Price{}, false
}

func lookupPrice(name string) (Price, bool) {
	overridesMu.RLock()
	p, ok := overrides[name]
	overridesMu.RUnlock()
	if ok {
		return p, true
	}
	for i := range prices {
		if prices[i].name == name {
			return prices[i].price, true
		}
	}
	return Price{}, false
}

// undated strips a snapshot suffix: -YYYYMMDD, -YYYY-MM-DD or -latest.
func undated(name string) string {
	if s, ok := strings.CutSuffix(name, "-latest"); ok {
		return s
	}
	i := strings.LastIndexByte(name, '-')
	if i >= 0 && len(name)-i-1 == 8 && digits(name[i+1:]) {
		return name[:i]
	}
	// -YYYY-MM-DD: three dash-separated groups of 4, 2 and 2 digits.
	if n := len(name); n > 11 && name[n-11] == '-' && name[n-6] == '-' && name[n-3] == '-' &&
		digits(name[n-10:n-6]) && digits(name[n-5:n-3]) && digits(name[n-2:]) {
		return name[:n-11]
	}
	return name
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
