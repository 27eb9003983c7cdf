# fish completion for docker-doctor. Load it now with
#   docker-doctor completion fish | source
# or for every shell: docker-doctor completion fish > ~/.config/fish/completions/docker-doctor.fish
#
# The candidates come from `docker-doctor __complete WORD... CURRENT` (one per line, then
# `:DIRECTIVE`; directive bit 4: no file names).

function __docker_doctor_complete
    set -l typed (commandline -opc)
    set -l current (commandline -ct)
    set -l answer ($typed[1] __complete $typed[2..-1] "$current" 2>/dev/null)
    or return
    set -l directive (string replace ':' '' -- $answer[-1])
    set -e answer[-1]
    if test (count $answer) -gt 0
        printf '%s\n' $answer
    else if test (math "bitand($directive, 4)") -eq 0
        __fish_complete_path "$current"
    end
end

complete -c docker-doctor -f -a '(__docker_doctor_complete)'
