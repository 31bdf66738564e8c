package coordinator

import (
	"context"
	"sync"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/backoff"
)

// RateLimit tells how much of the account's Platform API budget is left (RateLimit-Remaining).
type RateLimit interface {
	RateLimitRemaining() (n int, ok bool)
}

// The run's share of the account's Platform API budget. Heroku gives an account 4,500 tokens
// refilled at about 75 a minute, shared by every tool of the account: the run, its children
// included, spends at most CallsPerMinute a minute on average, bursting to callBurst, so that
// no 60 s of it makes more than 60 calls and other tools keep room.
const (
	CallsPerMinute = 45
	callBurst      = 10
	// ChildCalls is what one child spends on the Platform API (resolving its database
	// attachment): charged when its dyno is started.
	ChildCalls = 2
	// lowRemaining: below this many tokens left, the run slows in proportion (someone else is
	// spending the account's budget too).
	lowRemaining = 1500
)

// Calls is about how many Platform API calls a fan-out run of targets makes: per target, its
// dyno's start, its child's calls and a state read; and a log session reopened every minute or
// so while the run lasts (at least the time its calls take at CallsPerMinute).
func Calls(targets int) int {
	perTarget := 1 + ChildCalls + 1
	minutes := (targets*perTarget + CallsPerMinute - 1) / CallsPerMinute
	return targets*perTarget + 3*max(1, minutes)
}

// pacer spends the run's budget: a token bucket the coordinator takes from before each call
// (and for each child it starts), slower when RateLimit-Remaining runs low, paused after a 429.
type pacer struct {
	rate   RateLimit // nil: the remaining budget is unknown
	perSec float64   // tokens a second at full speed

	mu     sync.Mutex
	tokens float64
	at     time.Time
}

func newPacer(rate RateLimit, perMinute int) *pacer {
	return &pacer{rate: rate, perSec: float64(perMinute) / 60, tokens: callBurst, at: time.Now()}
}

// speed is the refill rate now: full, or in proportion to what the account has left.
func (p *pacer) speed() float64 {
	if p.rate != nil {
		if n, ok := p.rate.RateLimitRemaining(); ok && n < lowRemaining {
			return p.perSec * max(0.1, float64(n)/lowRemaining)
		}
	}
	return p.perSec
}

// take spends n tokens and returns how long the caller must wait before its call.
func (p *pacer) take(n int) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	speed := p.speed()
	p.tokens = min(callBurst, p.tokens+now.Sub(p.at).Seconds()*speed)
	p.at = now
	p.tokens -= float64(n)
	if p.tokens >= 0 {
		return 0
	}
	return time.Duration(-p.tokens / speed * float64(time.Second))
}

// wait spends n tokens, waiting until the budget allows them.
func (p *pacer) wait(ctx context.Context, n int) error {
	return backoff.Sleep(ctx, p.take(n))
}

// hold pauses every call for d: Heroku answered 429.
func (p *pacer) hold(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens = min(p.tokens, -d.Seconds()*p.speed())
}
