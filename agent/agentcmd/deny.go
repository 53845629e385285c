package agentcmd

func newDeny(stdio IO) *Command {
	return newAnswer(stdio, false)
}
