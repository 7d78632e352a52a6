package label

// Job is what a printer reads from a ZPL job: the data of its fields.
type Job struct {
	// Fields are the job's fields with data (^FD or ^FV), in order.
	Fields []Field
}

// Field is the data of one field as the printer reads it.
type Field struct {
	// Barcode is the field's barcode command without the caret ("BX",
	// "BC"), or "" for text.
	Barcode string
	// Data is the field data with ^FH hex escapes and ^FB's \& and \\
	// undone, and, in a quality 200 ^BX field, the Data Matrix escape
	// sequences: an FNC1 after the first position is GS (0x1D), so a GS1
	// DataMatrix reads as the element string a scanner transmits.
	Data string
	// GS1 reports a ^BX field whose data starts with FNC1, a GS1
	// DataMatrix; that FNC1 is not in Data (a scanner reports it as the
	// symbology identifier ]d2).
	GS1 bool
	// Pos is the offset of the field's ^FD in the job.
	Pos int
}

// ParseJob reads the fields of a ZPL job, one or more ^XA…^XZ formats,
// under the rules Parse holds templates to (see the package comment): a
// ^ or ~ inside field data, a bad ^FH escape or a prefix change is a
// *SyntaxError, never a silently different label.
func ParseJob(job []byte) (Job, error) {
	var j Job
	err := scan(string(job), func(f field) error {
		data, fnc1, err := decode(f, f.data, f.start)
		if err != nil {
			return err
		}
		j.Fields = append(j.Fields, Field{Barcode: f.barcode, Data: data, GS1: fnc1, Pos: f.pos})
		return nil
	})
	if err != nil {
		return Job{}, err
	}
	return j, nil
}

// DataMatrix returns the data of the job's ^BX fields, in order.
func (j Job) DataMatrix() []Field {
	var out []Field
	for _, f := range j.Fields {
		if f.Barcode == "BX" {
			out = append(out, f)
		}
	}
	return out
}

// Text returns the data of the job's text fields, in order.
func (j Job) Text() []string {
	var out []string
	for _, f := range j.Fields {
		if f.Barcode == "" {
			out = append(out, f.Data)
		}
	}
	return out
}
