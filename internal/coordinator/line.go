package coordinator

import (
	"encoding/json"
	"strconv"
	"strings"
)

// ResultMessage is the msg of the one line a child writes last: its target's outcome, with the
// fields app, database, status (archived, already archived, failed), and backup, bytes,
// location, error when known. It is an ordinary log line (logfmt or JSON, as LOG_FORMAT says),
// scrubbed like every other, and it is what the coordinator takes as the child's outcome: a
// dyno has no exit status in the Platform API.
const ResultMessage = "child result"

// Fields reads one log line written by pgoffsite's logger, logfmt (key=value, values bare or
// Go-quoted) or JSON, into its fields (the message always as msg); nil when the line is neither.
func Fields(line string) map[string]string {
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "{") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			return nil
		}
		out := map[string]string{}
		for k, v := range m {
			if s, ok := v.(string); ok {
				out[k] = s
			} else {
				b, _ := json.Marshal(v)
				out[k] = string(b)
			}
		}
		if m, ok := out["message"]; ok && out["msg"] == "" {
			out["msg"] = m // zerolog's JSON names it message; logfmt, msg
		}
		return out
	}
	out := map[string]string{}
	for line != "" {
		eq := strings.IndexByte(line, '=')
		if eq <= 0 || strings.ContainsAny(line[:eq], " \"") {
			return nil
		}
		key := line[:eq]
		line = line[eq+1:]
		var val string
		if strings.HasPrefix(line, `"`) {
			q, err := strconv.QuotedPrefix(line)
			if err != nil {
				return nil
			}
			val, _ = strconv.Unquote(q)
			line = line[len(q):]
		} else {
			end := strings.IndexByte(line, ' ')
			if end < 0 {
				end = len(line)
			}
			val, line = line[:end], line[end:]
		}
		out[key] = val
		line = strings.TrimLeft(line, " ")
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func bytesField(v string) int64 {
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}
