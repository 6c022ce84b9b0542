package control

import (
	"cmp"
	"slices"

	"github.com/switchbackhq/switchback/internal/domain"
)

// AddNoisePath adds n to paths[path], saturating, and returns paths
// (allocated when nil); a path not in paths is dropped when keep paths
// already are. Stores keep one such map per migration, partner and event
// type and call this, so that every store bounds them alike.
func AddNoisePath(paths map[string]uint64, path string, n uint64, keep int) map[string]uint64 {
	if paths == nil {
		paths = map[string]uint64{}
	}
	if _, ok := paths[path]; !ok && len(paths) >= keep {
		return paths
	}
	paths[path] = domain.AddCounts(paths[path], n)
	return paths
}

// SortNoise sorts observations by partner, event type and path, the order
// Store.Noise returns them in.
func SortNoise(obs []domain.NoiseObservation) {
	slices.SortFunc(obs, func(a, b domain.NoiseObservation) int {
		return cmp.Or(cmp.Compare(a.Partner, b.Partner), cmp.Compare(a.EventType, b.EventType), cmp.Compare(a.Path, b.Path))
	})
}
