package server

//go:generate go run gen_names.go

// xmlName is the EC2 XML wire name of an output field: its element and, for
// lists whose members are not <item>, the member element.
type xmlName struct {
	Elem string
	Item string
}
