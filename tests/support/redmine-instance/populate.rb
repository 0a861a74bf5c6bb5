# Fill a project with issues and notes, as people would have made them, without one HTTP request
# each (support/redmine.py populate(); about twice as fast as sequential REST, and REST cannot go
# concurrent on SQLite). Run by `rails runner` with PROJECT, ISSUES, NOTES in the environment;
# prints the new issue ids, one a line. The models' own callbacks run, so journals, updated_on and
# custom values are what the REST API would have written.
project = Project.find_by_identifier!(ENV.fetch('PROJECT'))
issues = Integer(ENV.fetch('ISSUES'))
notes = Integer(ENV.fetch('NOTES'))
admin = User.find_by_login!('admin')
User.current = admin
tracker = project.trackers.first
ids = []
(1..issues).each_slice(100) do |numbers|
  Issue.transaction do
    numbers.each do |number|
      issue = Issue.new(project: project, tracker: tracker, author: admin,
                        subject: "Issue #{number}", description: "Description of issue #{number}")
      issue.save!
      (1..notes).each do |note|
        # A fresh copy per note, as each request would load: a saved issue's callbacks leave the
        # in-memory object stale (lock_version, the journal just written).
        issue = Issue.find(issue.id)
        issue.init_journal(admin, "Note #{note} of issue #{number}")
        issue.save!
      end
      ids << issue.id
    end
  end
end
puts ids
