package control_test

import (
	"testing"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/control/registrytest"
)

func TestMemoryRegistryConformance(t *testing.T) {
	registrytest.Run(t, func(*testing.T) control.Registry { return control.NewMemoryRegistry() })
}
