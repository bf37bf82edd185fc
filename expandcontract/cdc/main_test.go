package cdc_test

import (
	"testing"

	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
)

func TestMain(m *testing.M) { ectest.Main(m) }
