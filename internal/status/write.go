package status

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write writes the report to w as text, or as JSON, and with htmlFile the HTML page to that
// file too.
func Write(w io.Writer, asJSON bool, htmlFile string, r Report) error {
	var err error
	if asJSON {
		err = WriteJSON(w, r)
	} else {
		err = WriteText(w, r)
	}
	if err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	if htmlFile == "" {
		return nil
	}
	if err := WriteHTMLFile(htmlFile, r); err != nil {
		return fmt.Errorf("write the HTML report %s: %w", htmlFile, err)
	}
	return nil
}

// CheckHTMLFile tells whether the HTML page can be written to path: its directory exists.
// Checked before anything is read, so that a run does not end without the page it was asked for.
func CheckHTMLFile(path string) error {
	if dir := filepath.Dir(path); dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("the directory %s does not exist: create it or write the report elsewhere", dir)
		}
	}
	return nil
}
