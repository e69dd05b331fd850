package harness

import (
	"strings"

	"github.com/damperdev/damper/runtime/tool"
)

// system is a prompt's system prompt: the agent's instructions, the
// sandbox's AGENTS.md, the skills' catalogue, and how to give a result.
func (h *Harness) system(result *resultSpec, prompted bool) string {
	var b []byte
	b = append(b, h.cfg.System...)
	section := func(title string) {
		if len(b) > 0 {
			b = append(b, "\n\n"...)
		}
		b = append(b, title...)
	}
	if h.agentsMD != "" {
		section("# AGENTS.md (from the working directory)\n\n")
		b = append(b, h.agentsMD...)
	}
	if len(h.skills) > 0 && !prompted {
		section("# Skills\n\nThese skills are available. When a task matches a skill's description, call activate_skill with its name to load its instructions, and read_skill_resource for the files they mention.\n")
		for _, s := range h.skills {
			b = append(b, "\n- "...)
			b = append(b, s.Name...)
			b = append(b, ": "...)
			b = append(b, s.Description...)
		}
	}
	switch {
	case result != nil && prompted:
		section("# Your result\n\nWhen you have the result, answer with it as JSON in one fenced block:\n\n```json\n{...}\n```\n\nIt must fit this JSON Schema:\n\n")
		b = append(b, result.schema...)
		b = append(b, "\n\nIf you cannot give the result, answer with a fenced block saying why:\n\n```give_up\nthe reason\n```"...)
	case result != nil:
		section("# Your result\n\nWhen you have the result, call the finish tool with it: its arguments are the result. If the result cannot be given, call give_up with the reason. Calling either ends your work; every turn should end with a tool call until then.")
	}
	return string(b)
}

// offered are the tools a prompt of s offers, but the result tools: the
// harness's tools, the skill tools when there are skills, and the task
// tool when there are subagents; a skill's allowed-tools keep only those
// it names (and the skill tools).
func (h *Harness) offered(s *Session, skill *skillEntry) []tool.Tool {
	tools := append([]tool.Tool(nil), h.tools...)
	if len(h.skills) > 0 {
		tools = append(tools, h.skillTools()...)
	}
	if len(h.cfg.Subagents) > 0 {
		tools = append(tools, h.taskTool())
	}
	if skill == nil || len(skill.AllowedTools) == 0 {
		return tools
	}
	allowed := map[string]bool{activateSkillTool: true, readSkillTool: true}
	for _, name := range skill.AllowedTools {
		// "Bash(git:*)" names the tool bash, whatever it restricts.
		name, _, _ = strings.Cut(name, "(")
		allowed[strings.ToLower(name)] = true
	}
	kept := tools[:0]
	for _, t := range tools {
		if allowed[strings.ToLower(t.Name())] {
			kept = append(kept, t)
		}
	}
	return kept
}
