"""Perplexity texts that ship inside the package (a module, so every install carries them).

`EVERYDAY`: everyday English prose written for this project in 2026 and dedicated to the public
domain (CC0). It is no documentation, states few world facts, names no real place or person, and
is no famous text, so no model has seen it in training. Paragraphs are separated by blank lines.

`PRACTICAL`: the held-out twin of `EVERYDAY` in another register (notices, messages,
instructions, advice, a review), written after the healing text and the vocabulary were chosen.
"""

EVERYDAY = """\
The alarm went off at half past six, as it did every weekday, and for a moment Maria lay still and
listened to the rain against the window. She had meant to go to bed early the night before, but a
long conversation with her sister had kept her up, and now the warm blanket felt heavier than
usual. In the end it was the smell of coffee from the flat next door that got her moving. She
pulled on her old grey sweater, filled the kettle, and stood by the window while the water heated,
watching the street slowly wake up.

Downstairs, the baker had already put out the small sign that said fresh bread, and a man in a
yellow raincoat was walking his dog past the parked cars. The dog stopped at every tree and lamp
post, and the man waited patiently each time, his hood pulled low over his face. Maria liked these
quiet minutes before the day began properly. Nobody needed anything from her yet, the phone was
silent, and the list of tasks on the kitchen table could wait until she had finished her first cup.

Making bread at home is not difficult, but it asks for patience more than skill. You start with
flour, water, salt and a little yeast, and you mix them in a large bowl until no dry flour is left.
The dough will look rough and sticky at first, and that is fine. Cover the bowl with a clean towel
and leave it alone for half an hour, so that the flour can soak up the water. When you come back,
the dough will already be smoother, and it will be much easier to work with.

Next comes the kneading. Turn the dough out onto a lightly floured table, press it away from you
with the heel of your hand, fold it back over itself, and turn it a quarter of the way around.
Repeat this for about ten minutes. Your arms may get tired, but you will feel the dough change
under your hands, becoming soft, springy and less sticky. Put it back in the bowl, cover it again,
and let it rise in a warm corner of the kitchen until it has doubled in size, which usually takes
one or two hours.

When the dough has risen, shape it gently into a round loaf, place it on a tray, and let it rest
once more while the oven heats. Just before baking, cut a shallow line across the top with a sharp
knife, so that the bread can open neatly as it grows. Bake it until the crust is deep brown and the
bottom sounds hollow when you knock on it. The hardest part of the whole process is the last one:
waiting for the loaf to cool before you cut the first slice.

Dear Tom, thank you for your letter, which arrived on Tuesday and made me smile all afternoon. I am
sorry it has taken me so long to answer. The move went more or less as planned, although the van
was two hours late and one of the boxes of plates did not survive the journey. The new house is
smaller than the old one, but the rooms are bright, and there is a little garden at the back where
the previous owners left a bench and a very determined rose bush.

The children have settled in faster than I expected. Emma has already made a friend at her new
school, a quiet girl who lives three doors down and who seems to share her love of drawing horses.
Sam is taking a little longer. He misses his old football team and says the boys here play too
roughly, but last Saturday he came home muddy and cheerful, so I think things are getting better.
As for me, I am still learning which cupboard holds the pans and which key opens the shed.

You asked whether we would like to visit you in the summer, and the answer is yes, very much. We
could come for a week at the end of July, if that suits you, and we would be happy to sleep on the
floor if the spare room is full. Let me know what would work best for your family. Until then, take
care of yourself, give my love to everyone, and do not work too hard. With warm wishes, Anna.

It had been raining since lunch, and by three o'clock the children had run out of ideas. They had
built a tower from cushions, knocked it down, built it again, and argued about whose turn it was to
be the king. Their grandmother, who had been reading in the armchair by the stove, finally closed
her book and announced that it was time for a proper project. She fetched a shoebox of old buttons,
a ball of string, a pair of scissors, and a stack of coloured paper from the drawer under the
stairs.

For the next two hours the living room was unusually quiet. The younger boy sorted the buttons by
colour and then by size, lining them up along the edge of the table with great seriousness. His
sister cut paper into long strips and glued them into a chain that soon reached from the window to
the door. When their parents came home, they found the chain hanging across the room like a bright
flag, and both children fast asleep on the sofa, still holding the glue.

A bicycle that has stood in the shed all winter usually needs a little care before it is ready for
the road. Start by checking the tyres. Pump them up to the pressure printed on their sides and
leave the bike for an hour; if a tyre has gone soft again, there is a hole in the inner tube that
will need a patch. Then look at the chain. If it is dry or rusty, clean it with an old rag, add a
few drops of oil, and turn the pedals backwards so that the oil spreads along every link.

The brakes deserve the most attention. Squeeze each lever hard and make sure it stops well before
it touches the handlebar. Look at the rubber pads that press against the wheel: if they are worn
smooth or cracked, replace them, because they are cheap and your safety depends on them. Finally,
ride slowly around the block, listening for clicks and rattles, and testing the gears one by one. A
bike that has been looked after properly is quiet, and a quiet bike is a pleasure to ride.

Every Thursday evening a small market fills the square behind the old school. It is not a grand
affair. There are perhaps twenty stalls under striped awnings, selling vegetables, cheese, honey,
flowers and second-hand books, and a van at the corner that makes pancakes with whatever fruit is
in season. People come after work with their shopping bags and stay longer than they intended,
chatting with neighbours they have not seen all week while the light slowly fades.

The woman who sells honey has been there longer than anyone can remember. She keeps her bees on a
hillside outside the town and talks about them as if they were members of her family, complaining
when they are lazy and praising them when the summer has been good. Next to her, a young couple
sells bread from a farm oven, and they usually run out long before the market closes. The regular
customers know to come early, and the latecomers have learned to hide their disappointment
politely.

Learning to swim is mostly a matter of learning to trust the water. When Leo first went to the
pool, he held on to the edge with both hands and refused to let go, even though the water only came
up to his chest. His teacher did not hurry him. Week after week she asked him to put his face in
the water for a second, then two seconds, then to blow bubbles, then to lie back while she held his
head. Each small step seemed like nothing, but together they slowly changed the way he felt.

One morning, near the end of the winter, the teacher took her hand away without saying anything,
and Leo floated on his back for a few seconds before he noticed. When he realised what had
happened, he laughed so hard that he swallowed a mouthful of water and came up coughing, but he was
proud all the same. By the summer he could swim the width of the pool, and by the following year he
was the one encouraging his little cousin not to be afraid.

Keeping a small vegetable garden teaches you to pay attention. In spring you watch the soil warm up
and wait for the right moment to sow the first seeds, not too early, when a late frost might kill
them, and not too late, when the season will be too short. In summer you learn which plants need
water every evening and which ones prefer to be left alone. You notice the snails after rain, the
birds that come for the berries, and the way the tomatoes ripen faster against the warm wall.

There are failures every year. The beans may be eaten by something in the night, the lettuce may
run to seed during a hot week, and the carrots may grow short and crooked in the heavy ground. But
there are small victories too: the first radish pulled from the earth, a bowl of peas eaten
straight from the pods, a pumpkin so large that it has to be carried home in a wheelbarrow. A
gardener soon learns that the plan on paper is only a hope, and that the real garden always has
ideas of its own.

The train left the station a few minutes late and moved slowly through the edge of the city, past
warehouses, car parks and the backs of houses with washing hanging in their yards. Then the
buildings thinned out, and the window filled with fields, hedges and low hills. In the seat
opposite, an elderly man unfolded a newspaper and began the crossword with a pencil, while a young
woman across the aisle typed quickly on her laptop, pausing now and then to stare out at the
passing landscape.

Somewhere after the second stop, the man looked up and asked, a little shyly, if anyone knew a word
of seven letters that meant a feeling of longing for the past. The young woman thought for a moment
and suggested nostalgia, and the man counted the squares, nodded, and wrote it in. After that the
three of them worked on the crossword together, passing the newspaper back and forth, and by the
time the train reached the coast they had filled in every square except one, which nobody could
solve.

Saving money is rarely about one big decision. For most households it is the sum of many small
habits that are easy to forget. Writing a shopping list before going to the supermarket, and
sticking to it, can cut the weekly bill more than any special offer. Cooking a large pot of soup on
Sunday and eating it for two or three lunches costs far less than buying sandwiches every day.
Turning off lights in empty rooms and waiting until the washing machine is full are small things,
but over a year they add up.

It also helps to know where the money actually goes. Many people who keep a simple record of their
spending for one month are surprised by what they find: a streaming service they no longer watch, a
gym they visit twice a year, or a daily coffee that quietly costs as much as a short holiday. The
point is not to give up every pleasure, but to choose them on purpose. Money spent on something you
truly enjoy is rarely wasted; money that simply slips away usually is.

The kitchen was the last room to be cleaned before the guests arrived, and by then everyone was
tired. Someone had to wash the pile of pans from the morning, someone had to wipe the counters and
sweep the floor, and someone had to find enough chairs for twelve people when the house only had
eight. After a short argument the jobs were shared out, and the radio was turned up loud enough to
make the work feel less like work. By six o'clock the room smelled of lemon soap and roasting
vegetables.

The guests came in small groups, shaking the rain from their coats and handing over bottles,
flowers and a suspiciously large cake. Conversation started in the hall and spread through the
house, and the carefully arranged chairs were soon abandoned as people gathered around the kitchen
table instead, just as they always did. Nobody noticed the floor or the clean counters, of course,
but the hosts did not mind. The evening was loud and warm, and it went on long after the last
candle had burned down.

On the first cold morning of autumn, the lake behind the village was covered with a thin layer of
mist. Two fishermen sat in a small boat near the reeds, not talking, their lines hanging still in
the grey water. On the shore, a woman was teaching her daughter to skip stones. The girl threw them
too high at first, and they disappeared with a single splash, but her mother showed her how to hold
the flat stone low and flick it from the side. On the tenth try, the stone bounced three times, and
the girl shouted so loudly that one of the fishermen turned around and waved.

A good apology has three parts, and most people forget at least one of them. The first is to say
clearly what you did, without hiding behind vague words. The second is to admit how it affected the
other person, even if you did not mean to hurt them. The third is to say what you will do
differently next time, and then to actually do it. An apology that skips the first part sounds
empty, one that skips the second sounds defensive, and one that skips the third is only a promise
waiting to be broken.
"""

# The held-out twin of EVERYDAY, written on 2026-12-01 after the healing text and the vocabulary
# were chosen and never read while choosing them: the practical register (notices, messages,
# instructions, advice, a review) rather than stories. CC0 like EVERYDAY.
PRACTICAL = """\
Dear residents, the water supply to the north side of the building will be switched off on
Thursday between nine in the morning and one in the afternoon while the old pipes in the
basement are replaced. Please fill a few bottles the evening before, and do not run the washing
machine or the dishwasher during those hours. If the work finishes early we will put a note on
the board by the lifts. We are sorry for the trouble and thank you for your patience.

Hi Sam, just a quick message to say that the meeting has moved from Tuesday to Wednesday at the
same time. The small room on the second floor was already booked, so we will use the kitchen
table instead, which is probably more comfortable anyway. Could you bring the printed copies of
the budget? Mine ran out of ink halfway through. See you then, and thanks again for covering
for me last week.

To make a simple vegetable soup, start by chopping one onion, two carrots and two sticks of
celery into small pieces. Warm a spoonful of oil in a large pot and let the vegetables soften
over a low heat for about ten minutes, stirring now and then so that nothing sticks. Add a
chopped potato, a handful of lentils and enough stock to cover everything by a few centimetres.
Let it simmer for half an hour, until the lentils are soft, then season with salt and pepper.
It keeps well in the fridge for three days and tastes even better on the second.

Before you call the help line, please check three things. First, make sure the router is
plugged in and that the small light on its front is green rather than orange. Second, switch it
off, wait for a full minute, and switch it on again; most problems go away at this point.
Third, try another device, such as a phone, to see whether the fault is with the connection or
with your computer. If none of this helps, write down the code shown on the screen before you
call, because it tells the person on the line where to start.

A reader writes that her teenage son spends most of the evening in his room and answers every
question with a single word. She wonders whether she should worry. In most cases this is an
ordinary part of growing up: young people need more privacy as they work out who they are.
What helps is to keep small, regular moments together that do not feel like an interview, such
as a drive to the shops or cooking a meal side by side. Talk about your own day without asking
for a report on his. If he seems withdrawn for weeks, stops seeing friends or loses interest in
everything he used to enjoy, then it is worth talking to someone who can help.

The lost property office is on the ground floor, next to the ticket machines. Items found on
the trains are kept for one month and then given to charity, unless they are valuable, in which
case they are handed to the police. To collect something, bring a form of identification and be
ready to describe what you lost, where you were sitting and roughly at what time. Umbrellas,
gloves and single shoes are by far the most common things we find, followed by books and phone
chargers.

Our small garden club met on Saturday to plan the spring planting along the path behind the
library. Twelve members came, which is the most we have had since the club started, and two
new volunteers offered to water the beds during the summer holidays. We agreed to plant herbs
near the bench, where people like to sit, and flowers that bees enjoy along the fence. The
next meeting is on the first Saturday of the month. Bring gloves, a trowel and, if you can, a
cake to share.

I bought this kettle three months ago to replace one that had started to leak. It boils a full
jug in a little over two minutes and is quieter than my old one, which I appreciate early in
the morning. The handle stays cool and the lid opens wide enough to clean the inside. My only
complaint is that the markings on the side are hard to read unless the light is good. For the
price, it does exactly what a kettle should do, and I would buy it again.

Thank you for your order. Your parcel has left our warehouse and should arrive within three
working days. You will receive a message on the morning of delivery with a two-hour window. If
nobody is at home, the driver will leave a card and try again the following day. You can also
choose to have the parcel left with a neighbour or collected from the shop at the end of your
street. If anything is damaged or missing when it arrives, please let us know within fourteen
days so that we can put it right.

When you start running, the most common mistake is to go too fast, too soon. Begin with short
sessions in which you run for one minute and walk for two, and repeat that eight times. Do this
three times a week, with a day of rest in between, and add a little more running each week.
Wear comfortable shoes, drink water before and after, and do not worry about your speed. After
two months most people can run for twenty minutes without stopping, which is a good moment to
decide what you would like to aim for next.

Please remember that the school will close early on Friday for the staff training afternoon.
Children may be collected from twelve thirty. Lunch will be served as usual before then. If you
are not able to collect your child at that time, the after-school club will be open, but
places are limited, so let the office know by Wednesday. We also want to thank all the parents
who helped at the autumn fair; together you raised enough to buy new books for every class.

Dear neighbour, I am writing to let you know that we are having some building work done at the
back of our house over the next two weeks. The builders will start at eight and finish by five,
and they will not work at the weekend. There will be some noise, especially on the first few
days when they take down the old wall. If a delivery lorry blocks your drive, please knock on
our door and we will ask them to move it straight away. Thank you for understanding, and do
come round for a cup of tea when it is all finished.

If your bicycle chain keeps slipping, the cause is usually dirt or wear rather than anything
broken. Turn the bike upside down, clean the chain with an old cloth and a little soapy water,
and let it dry. Then put one drop of oil on each link while you turn the pedals slowly backwards,
and wipe away what is left on the outside. If the chain still slips, it may have stretched with
age, and a shop can measure it in a few seconds. A new chain is cheap compared with the gears it
wears out when it is left too long.

The reading group will discuss the first half of the novel at the next meeting, so there is no
need to finish it yet. Several of you asked for shorter books after the last one, which took
most of us the whole winter, and we have listened. Suggestions for the new year are welcome: put
them in the box by the door or mention them at the end of the evening. As always, tea and
biscuits will be provided, and newcomers are very welcome, whether or not they have read the
book.

A good way to save a little money each month is to write down everything you spend for two
weeks, without trying to change anything. Most people are surprised by what they find: small
daily purchases, such as a coffee on the way to work or a snack in the afternoon, often add up to
more than a large bill. Once you can see where the money goes, choose one or two habits to
change rather than all of them at once. Small changes that last are worth more than a strict
plan that is given up after a week.

The swimming pool will reopen on Monday after its annual cleaning. The changing rooms have been
repainted and the lockers now take a coin that is returned when you open them again. Lane
swimming is available every morning from seven until nine, and the slow, medium and fast lanes
will be marked with signs at both ends. Children under eight must be accompanied in the water by
an adult. We look forward to seeing you again.

Hello everyone, a reminder that the car park behind the surgery will be closed on Monday and
Tuesday while the lines are repainted. Patients with an appointment can park in the street or
in the supermarket car park across the road, where the first hour is free. If you have trouble
walking and need to be dropped at the door, tell the receptionist when you arrive and someone
will help you inside. Repeat prescriptions can still be ordered as usual.

To keep a houseplant healthy through the winter, water it less than you would in summer, since
it grows more slowly when the days are short. Push a finger into the soil: if the top two
centimetres are dry, it is time to water; if they are still damp, wait a few more days. Move the
pot closer to a window, but not so close that the leaves touch the cold glass, and keep it away
from radiators, which dry the air. Yellow leaves at the bottom are normal now and then, but many
at once usually mean too much water.

Hi both, thank you so much for having us at the weekend. The children have not stopped talking
about the walk to the lake and the enormous pancakes on Sunday morning. We got home a little
after six, tired but happy, and everyone was asleep by eight, which must be some kind of
record. I have put the book you lent me in my bag so that I remember to read it on the train.
Let us know when you are free to come to us next; the spare room is yours whenever you like.

Notes from the residents' meeting: the new bins will be delivered at the end of the month, one
for glass and one for paper, and collection days stay the same. Several people raised the
problem of cars parked on the corner, which makes it hard to see when crossing; we will write to
the council about painting lines there. The lights in the stairwell on the third floor have been
fixed. The next meeting will be held in the community room, and anyone who wants to add an item
to the list should speak to the secretary a week before.

When you buy a second-hand sofa, sit on it for a few minutes rather than just looking at it. Press
the cushions to see whether they spring back, and lift one corner to feel how heavy the frame is,
since a heavy frame is usually a solid one. Check the seams and the underside for damage, and
smell the fabric, because smoke and damp are hard to get rid of. Measure your doorways and stairs
before you agree to anything: many people have bought a sofa that would not fit through the door.

Please do not leave bags or boxes in the corridor outside the flats. Apart from making it hard for
people with prams or wheelchairs to get past, anything left there is a danger in a fire, when the
corridor may be full of smoke. Large items can be taken to the collection point by the garages on
the last Saturday of each month. If you need help carrying something down, the caretaker is
happy to lend a trolley; just ask at the office during the day.
"""
