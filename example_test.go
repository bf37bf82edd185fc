package cutover_test

import (
	"fmt"

	"github.com/cutover-go/cutover"
)

func Example() {
	for _, s := range cutover.Stages {
		reads := s.Authoritative().String()
		if s.Compares() {
			reads += ", compared with " + s.Authoritative().Other().String()
		}
		writes := s.Authoritative().String()
		if sec, ok := s.Secondary(); ok {
			writes += " then " + sec.String()
		}
		fmt.Printf("%-9s writes %-12s reads %s\n", s, writes, reads)
	}
	// Output:
	// off       writes old          reads old
	// dualwrite writes old then new reads old
	// shadow    writes old then new reads old, compared with new
	// live      writes new then old reads new, compared with old
	// rampdown  writes new then old reads new
	// complete  writes new          reads new
}

func ExampleParseStage() {
	s, err := cutover.ParseStage("shadow")
	fmt.Println(s, err)
	_, err = cutover.ParseStage("Shadow")
	fmt.Println(err)
	// Output:
	// shadow <nil>
	// cutover: unknown stage "Shadow" (want off, dualwrite, shadow, live, rampdown or complete)
}
