package natstier

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// The share rule settles every router at its share, from any start, one
// give at a time, the shard given going to any router that pulls; and
// whenever a shard is free some router pulls it.
func TestShareSettlesEveryRouterAtItsShare(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, shards := range []int{16, 7, 100} {
		for n := 1; n <= 20; n++ {
			for start := range 20 {
				held := make([]int, n)
				if start == 0 {
					held[0] = shards // the first router took every shard
				} else {
					for range shards {
						held[rng.IntN(n)]++
					}
				}
				name := func(r int) string { return fmt.Sprintf("r%02d", r) }
				others := func(r int) map[string]int {
					m := map[string]int{}
					for o, h := range held {
						if o != r {
							m[name(o)] = h
						}
					}
					return m
				}
				lo, hi := shards/n, (shards+n-1)/n
				for step := 0; ; step++ {
					var givers, pullers []int
					for r := range n {
						pull, give := share(shards, held[r], name(r), others(r))
						if give {
							givers = append(givers, r)
						}
						if pull {
							pullers = append(pullers, r)
						}
					}
					if len(givers) == 0 {
						for r, h := range held {
							if h < lo || h > hi {
								t.Fatalf("%d shards, %d routers from %d: settled at %v, router %d outside [%d, %d]", shards, n, start, held, r, lo, hi)
							}
						}
						break
					}
					if step > shards*n {
						t.Fatalf("%d shards, %d routers from %d: still giving after %d gives: %v", shards, n, start, step, held)
					}
					g := givers[rng.IntN(len(givers))]
					held[g]--
					// The giver rests the shard: it goes to another router
					// that pulls, as the rule computes with the giver's
					// count down by one.
					pullers = pullers[:0]
					for r := range n {
						if pull, _ := share(shards, held[r], name(r), others(r)); pull && r != g {
							pullers = append(pullers, r)
						}
					}
					if len(pullers) == 0 {
						t.Fatalf("%d shards, %d routers: a shard given away by router %d at %v, and no other router pulls it", shards, n, g, held)
					}
					held[pullers[rng.IntN(len(pullers))]]++
				}
			}
		}
	}
}

// Every free shard has a router that pulls it, whatever the routers hold.
func TestShareLeavesNoFreeShardUnpulled(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		shards, n := 1+rng.IntN(40), 1+rng.IntN(12)
		held := make([]int, n)
		taken := rng.IntN(shards) // at least one free
		for range taken {
			held[rng.IntN(n)]++
		}
		any := false
		for r := range n {
			m := map[string]int{}
			for o, h := range held {
				if o != r {
					m[fmt.Sprint(o)] = h
				}
			}
			if pull, _ := share(shards, held[r], fmt.Sprint(r), m); pull {
				any = true
			}
		}
		if !any {
			t.Fatalf("%d shards, routers holding %v: a free shard nobody pulls", shards, held)
		}
	}
}

func TestRouterKeyIsAValidKey(t *testing.T) {
	for name, want := range map[string]string{"edge-1": "edge-1", "router-1.example.com": "router-1_example_com", "": "router", "a b/é": "a_b__"} {
		if got := routerKey(name); got != want {
			t.Errorf("routerKey(%q) = %q, want %q", name, got, want)
		}
	}
}
